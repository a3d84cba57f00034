"""The app serves every layout: loose files and tar members byte for byte (a member streamed
from its shard, nothing extracted), previews downscaled, upright and cached, placeholders for
what cannot be decoded, and nothing outside the configured image sources."""

from __future__ import annotations

import io
import os
from pathlib import Path

import polars as pl
import pytest
from PIL import Image

from assets.images.decode import Unusable
from assets.labels.images import ImageSources
from assets.labels.preview import Previews, render
from tests.labels.conftest import (
    LAYOUTS,
    client_for,
    picture_home,
    picture_rows,
    pictures,
    store_events,
)

LONG_SIDE = 320  # the small PNG (300 x 200) fits; the others do not
KEYS = {
    "rotated": "danbooru:1",
    "wide": "danbooru:2",
    "small": "danbooru:3",
    "truncated": "danbooru:4",
}
TYPES = {"jpg": "image/jpeg", "png": "image/png"}


@pytest.fixture(scope="module")
def files() -> dict[str, tuple[str, bytes]]:
    return pictures()


def previews_client(home: Path, **config):
    return client_for(
        home,
        preview_dir=home / "data" / "image_cache" / "previews",
        preview_long_side=LONG_SIDE,
        **config,
    )


def every_file(home: Path) -> set[Path]:
    return {p for p in home.rglob("*") if p.is_file()}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_originals_are_served_byte_for_byte(tmp_path, files, layout):
    home = picture_home(tmp_path, layout, files)
    with client_for(home) as api:
        before = every_file(home)
        for name, key in KEYS.items():
            ext, data = files[name]
            response = api.get(f"/images/{key}")
            assert response.status_code == 200, name
            assert response.content == data, f"{name}: not the exact bytes"
            assert response.headers["content-type"] == TYPES[ext]
            assert response.headers["content-length"] == str(len(data))
            assert response.headers["cache-control"] == "private, max-age=86400"
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["last-modified"]
            etag = response.headers["etag"]
            again = api.get(f"/images/{key}", headers={"If-None-Match": etag})
            assert again.status_code == 304 and again.content == b""
        new = {p for p in every_file(home) - before if not p.name.startswith("labels.sqlite")}
        assert not new, f"nothing is extracted to disk: {new}"
        item = api.get("/api/next", params={"labeler": "a"}).json()
        assert item["preview_url"] == item["image_url"], "previews are off by default"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_previews_are_small_upright_and_made_once(tmp_path, files, layout):
    home = picture_home(tmp_path, layout, files)
    with previews_client(home) as api:
        previews = api.app.state.labeling.previews
        item = api.get("/api/next", params={"labeler": "a"}).json()
        assert item["preview_url"] == f"/previews/{item['post_key']}"

        rotated = api.get(f"/previews/{KEYS['rotated']}")
        assert rotated.headers["content-type"] == "image/webp"
        picture = Image.open(io.BytesIO(rotated.content))
        assert picture.format == "WEBP"
        # stored 1600 x 900 sideways: shown 900 x 1600, so 180 x 320, red on top
        assert picture.size == (LONG_SIDE * 900 // 1600, LONG_SIDE)
        rgb = picture.convert("RGB")
        top, bottom = rgb.getpixel((90, 20)), rgb.getpixel((90, 300))
        assert top[0] > 200 and top[2] < 60, f"the top should be red, is {top}"
        assert bottom[2] > 200 and bottom[0] < 60, f"the bottom should be blue, is {bottom}"

        wide = Image.open(io.BytesIO(api.get(f"/previews/{KEYS['wide']}").content))
        assert wide.size == (LONG_SIDE, LONG_SIDE // 4)
        assert wide.convert("RGB").getpixel((10, 40)) == (255, 255, 255), "alpha on white"

        small = api.get(f"/previews/{KEYS['small']}")
        assert small.content == files["small"][1], "a picture that fits is served as it is"
        assert small.headers["content-type"] == "image/png"
        made = previews.decoded
        assert made == 3

        # the cache: a second round decodes nothing, and answers the same bytes
        cached = previews.folder / str(LONG_SIDE)
        assert len([p for p in cached.rglob("*.webp")]) == 2
        assert len([p for p in cached.rglob("*.orig")]) == 1
        assert api.get(f"/previews/{KEYS['rotated']}").content == rotated.content
        assert api.get(f"/previews/{KEYS['small']}").content == files["small"][1]
        assert previews.decoded == made
        etag = rotated.headers["etag"]
        assert (
            api.get(f"/previews/{KEYS['rotated']}", headers={"If-None-Match": etag}).status_code
            == 304
        )

    with previews_client(home) as api:  # a restarted app finds the cache on disk
        assert api.get(f"/previews/{KEYS['rotated']}").content == rotated.content
        assert api.app.state.labeling.previews.decoded == 0


@pytest.mark.parametrize("layout", LAYOUTS)
def test_an_image_that_cannot_be_decoded_gets_a_placeholder_and_can_be_labelled(
    tmp_path, files, layout
):
    home = picture_home(tmp_path, layout, files)
    key = KEYS["truncated"]
    with previews_client(home) as api:
        response = api.get(f"/previews/{key}")
        assert response.status_code == 422
        assert response.headers["content-type"].startswith("image/svg+xml")
        assert response.headers["x-image-error"] == "truncated"
        assert b"cannot be shown" in response.content
        assert api.get(f"/previews/{key}").status_code == 422
        assert api.app.state.labeling.previews.decoded == 1, "a failure is remembered"
        assert api.get(f"/images/{key}").content == files["truncated"][1], "the original stays"
        for value in ("skip", 2):
            saved = api.post("/api/labels", json={"post_key": key, "labeler": "a", "value": value})
            assert saved.status_code == 200
    labels = store_events(home).filter(post_key=key)
    assert labels.select("kind", "value").rows() == [("skip", None), ("label", 2)]


def test_paths_outside_the_image_sources_are_refused(tmp_path, files):
    home = picture_home(tmp_path, "tar", files)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(files["small"][1])
    outside_shard = picture_rows(outside, "tar", {"small": files["small"]}).row(0, named=True)
    (home / "images" / "escape.png").symlink_to(outside / "secret.png")
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "fine.png").write_bytes(files["small"][1])
    shard = str(home / "images" / "shards" / "00000.tar")
    size = os.path.getsize(shard)
    bad = {
        "absolute": (str(outside / "secret.png"), -1, -1),
        "dotdot": ("../../outside/secret.png", None, None),
        "symlink": ("escape.png", -1, -1),
        "shard": (outside_shard["image_path"], outside_shard["image_offset"], 100),
        "past-the-end": (shard, size - 10, 100),
        "no-length": (shard, 512, None),
        "folder": (str(home / "images" / "shards"), -1, -1),
        "missing": ("nope.png", -1, -1),
        "etc": ("/etc/passwd", -1, -1),
        "extra": (str(extra / "fine.png"), -1, -1),
    }
    pool = pl.read_parquet(home / "data" / "rating_pool" / "pool.parquet")
    rows = [
        {"post_key": f"e621:{i}", "site": "e621", "post_id": i, "image_key": name}
        | {"rating": "g", "stratum": "e621/g/d0/other", "round": 1}
        | {"image_path": path, "image_offset": offset, "image_length": length}
        for i, (name, (path, offset, length)) in enumerate(bad.items(), 1)
    ]
    pool = pl.concat([pool, pl.DataFrame(rows, schema=pool.schema)])
    pool.write_parquet(home / "data" / "rating_pool" / "pool.parquet")
    keys = {name: f"e621:{i}" for i, name in enumerate(bad, 1)}
    with previews_client(home) as api:
        for name, key in keys.items():
            for route in ("images", "previews"):
                response = api.get(f"/{route}/{key}")
                assert response.status_code == 404, (name, route, response.status_code)
                assert response.json() == {"error": "no image for this post key"}
        assert api.get(f"/images/{KEYS['small']}").status_code == 200
    with previews_client(home, image_sources=(extra,)) as api:
        assert api.get(f"/images/{keys['extra']}").content == files["small"][1]
        assert api.get(f"/images/{keys['absolute']}").status_code == 404


def test_a_tar_members_type_comes_from_its_name_or_its_bytes(tmp_path, files):
    png = files["small"][1]
    rows = picture_rows(tmp_path / "a", "tar", {"x": ("jpeg", png), "y": ("bin", png)})
    sources = ImageSources(tmp_path / "a")
    by_name, by_bytes = (sources.locate(r) for r in rows.iter_rows(named=True))
    assert by_name.media_type == "image/jpeg", "the member's extension names its type"
    assert by_bytes.media_type == "image/png", "an unknown extension: the bytes say"
    assert by_name.read() == png and b"".join(by_bytes.chunks()) == png


def test_the_cache_keeps_to_its_bound_dropping_the_least_recently_used(tmp_path, files):
    from PIL import Image as PILImage

    images = tmp_path / "images"
    images.mkdir()
    sources = ImageSources(images)
    located = []
    for i in range(6):
        out = io.BytesIO()
        PILImage.effect_noise((600, 400), 40 + i).convert("RGB").save(out, "PNG")
        (images / f"{i}.png").write_bytes(out.getvalue())
        located.append(sources.locate({"image_path": f"{i}.png"}))
    previews = Previews(tmp_path / "previews", 300, fmt="jpeg", max_bytes=1)
    one = len(previews.get(located[0]))
    previews.max_bytes = int(one * 3.5)
    for image in located[1:]:
        previews.get(image)
        previews.get(located[0])  # kept in use
    kept = {p.stem for p in (tmp_path / "previews").rglob("*.jpg")}
    total = sum(p.stat().st_size for p in (tmp_path / "previews").rglob("*.jpg"))
    assert total <= previews.max_bytes
    assert located[0].digest in kept, "the preview in use survives"
    assert located[1].digest not in kept, "the least recently used goes first"
    assert Image.open(io.BytesIO(previews.get(located[5]))).format == "JPEG"


@pytest.mark.parametrize(
    ("mode", "size"),
    [("P", (900, 300)), ("LA", (300, 900)), ("I;16", (800, 800)), ("CMYK", (1000, 500))],
)
def test_every_mode_becomes_an_rgb_preview(mode, size):
    img = Image.new(mode, size)
    if mode == "P":
        img.info["transparency"] = 0
    out = io.BytesIO()
    img.save(out, "TIFF" if mode in ("CMYK", "I;16") else "PNG")
    preview = render(out.getvalue(), 256, 10**8)
    assert preview.mode == "RGB"
    assert max(preview.size) == 256
    assert preview.size[0] / preview.size[1] == pytest.approx(size[0] / size[1], rel=0.02)
    if mode in ("P", "LA"):
        assert preview.getpixel((5, 5)) == (255, 255, 255), "transparency shown on white"


def test_what_is_not_a_picture_says_why():
    for data, reason in [
        (b"", "empty"),
        (b"<!doctype html><html>", "not_an_image"),
        (pictures()["truncated"][1], "truncated"),
    ]:
        with pytest.raises(Unusable) as refused:
            render(data, 256, 10**8)
        assert refused.value.reason == reason
    with pytest.raises(Unusable) as refused:
        render(pictures()["wide"][1], 256, 1000)
    assert refused.value.reason == "too_large"
