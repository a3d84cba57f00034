"""The demo image generator: its manifest tells the truth about every file, builds are
reproducible, odd files fail the way the manifest says, and degradations grow with level."""

from __future__ import annotations

import hashlib
import warnings
from collections import Counter
from itertools import pairwise
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import skimage.data
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from scoretag.demo.degrade import KINDS, MAX_LEVEL, degrade
from scoretag.demo.illustrations import MOTIFS, STYLES, draw_illustration
from scoretag.demo.images import (
    MANIFEST_SCHEMA,
    MIN_CROP,
    PHOTOS,
    SPECIAL_COUNTS,
    ImageSpec,
    build_images,
    draw_image,
    plan_images,
)
from scoretag.demo.odd_files import FAILURES

N_IMAGES = 600
# PIL's own default, written out: another test may have changed Image.MAX_IMAGE_PIXELS.
PIL_DEFAULT_MAX_PIXELS = 1024 * 1024 * 1024 // 4 // 3


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pl.DataFrame]:
    out = tmp_path_factory.mktemp("demo_images")
    return out, build_images(out, seed=0, n_images=N_IMAGES)


@pytest.fixture(scope="module")
def specs() -> list[ImageSpec]:
    return plan_images(0, N_IMAGES)


@pytest.fixture
def default_pil_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", PIL_DEFAULT_MAX_PIXELS)


def _pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img, np.float32)


def _mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(_pixels(a) - _pixels(b)).mean())


def _coarse_diff(a: Image.Image, b: Image.Image) -> float:
    """Difference at 1/8 scale, where JPEG and palette losses average out."""
    return _mean_abs_diff(a.convert("RGB").reduce(8), b.convert("RGB").reduce(8))


def test_manifest_has_the_schema_and_one_row_per_file(demo):
    out, manifest = demo
    assert dict(manifest.schema) == MANIFEST_SCHEMA
    assert manifest["image_id"].to_list() == list(range(N_IMAGES))
    assert sorted(p.name for p in out.iterdir()) == sorted(manifest["file_name"])


def test_manifest_columns_agree_with_each_other(demo):
    _, manifest = demo
    for row in manifest.iter_rows(named=True):
        assert (row["level"] == 0) == (row["degradation"] == "none"), row
        assert row["degradation"] in (*KINDS, "none") and 0 <= row["level"] <= MAX_LEVEL
        assert row["quality"] == 5 - row["level"]
        assert row["failure"] == FAILURES.get(row["special"], "")
        assert row["usable"] == (row["failure"] == "")
        assert row["file_name"] == f"{row['md5']}.{row['file_ext']}"
        assert (row["origin"] == "photo") == (row["style"] == "photo")
        if row["origin"] == "photo":
            assert row["subject"] in PHOTOS
        elif row["special"] != "huge":
            assert row["subject"] in MOTIFS and row["style"] in STYLES
    corrupt = manifest.filter(pl.col("special").is_in(list(FAILURES)))
    assert corrupt["level"].to_list() == [0] * corrupt.height


def test_every_special_kind_is_there_in_its_number(demo):
    _, manifest = demo
    found = Counter(s for s in manifest["special"] if s)
    assert found == Counter(SPECIAL_COUNTS)


@pytest.mark.parametrize("n_images", [60, 61, 137, 599])
def test_smaller_builds_keep_one_of_each_special(n_images):
    kinds = Counter(spec.special for spec in plan_images(5, n_images) if spec.special)
    assert set(kinds) == set(SPECIAL_COUNTS)


def test_content_mix_follows_the_plan(demo):
    _, manifest = demo
    regular = manifest.filter(pl.col("special") == "")
    ext_share = regular["file_ext"].value_counts(normalize=True)
    shares = dict(ext_share.iter_rows())
    assert shares["jpg"] == pytest.approx(0.55, abs=0.06)
    assert shares["png"] == pytest.approx(0.30, abs=0.06)
    assert shares["webp"] == pytest.approx(0.15, abs=0.05)
    assert (manifest["origin"] == "photo").mean() == pytest.approx(0.25, abs=0.05)
    graded = manifest.filter(pl.col("usable"))
    for level in range(MAX_LEVEL + 1):
        assert (graded["level"] == level).mean() == pytest.approx(0.2, abs=0.05)
    drawn = regular.filter(pl.col("origin") == "illustration")
    long_side = drawn.select(pl.max_horizontal("width", "height")).to_series()
    large = long_side.is_between(1500, 2048)
    assert (long_side.is_between(256, 768) | large).all()
    assert 0.005 <= large.mean() <= 0.04


def test_photos_are_never_enlarged(demo):
    _, manifest = demo
    photos = manifest.filter((pl.col("origin") == "photo") & (pl.col("special") == ""))
    for subject, width, height in photos.select("subject", "width", "height").iter_rows():
        source = getattr(skimage.data, subject)().shape[:2]
        assert max(width, height) <= round(MIN_CROP * max(source)) + 1


def test_hashes_and_sizes_match_the_bytes(demo):
    out, manifest = demo
    for row in manifest.iter_rows(named=True):
        data = (out / row["file_name"]).read_bytes()
        assert len(data) == row["file_size"]
        assert hashlib.md5(data).hexdigest() == row["md5"]
        assert hashlib.sha512(data).hexdigest() == row["sha512"]


def _check_failure(path: Path, row: dict) -> None:
    failure = row["failure"]
    if failure == "too_large":
        assert row["width"] * row["height"] > PIL_DEFAULT_MAX_PIXELS
        with pytest.warns(Image.DecompressionBombWarning):
            Image.open(path).close()
    elif failure == "truncated":
        with Image.open(path) as img, pytest.raises(OSError, match="truncated"):
            img.load()
    elif failure == "empty":
        assert path.stat().st_size == 0
        with pytest.raises(UnidentifiedImageError):
            Image.open(path)
    else:
        assert failure == "not_an_image"
        assert path.read_bytes().lstrip().lower().startswith(b"<!doctype html")
        with pytest.raises(UnidentifiedImageError):
            Image.open(path)


def test_files_decode_exactly_when_usable(demo, default_pil_limit):
    out, manifest = demo
    for row in manifest.iter_rows(named=True):
        path = out / row["file_name"]
        if not row["usable"]:
            _check_failure(path, row)
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.load()
                if row["special"] == "animated":
                    assert img.is_animated and img.n_frames >= 3


def test_mode_size_and_orientation_are_what_pil_reports(demo):
    out, manifest = demo
    readable = manifest.filter(pl.col("mode") != "")
    assert readable.height == N_IMAGES - 2  # all but the empty file and the HTML page
    for row in readable.iter_rows(named=True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(out / row["file_name"]) as img:
                assert (img.mode, img.size) == (row["mode"], (row["width"], row["height"]))
                if row["usable"]:  # PIL reads a PNG's EXIF only after its pixels
                    assert img.getexif().get(0x0112, 1) == row["orientation"]


def test_huge_files_are_valid_pngs_of_smooth_grey(demo, monkeypatch):
    out, manifest = demo
    huge = manifest.filter(pl.col("special") == "huge")
    assert (huge["file_size"] < 2_000_000).all()
    row = huge.row(0, named=True)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with Image.open(out / row["file_name"]) as img:
        pixels = np.asarray(img, np.int16)
    assert pixels.shape == (row["height"], row["width"])
    assert pixels.max() - pixels.min() > 100
    assert np.abs(np.diff(pixels[:, ::50], axis=0)).max() <= 16
    assert np.abs(np.diff(pixels[::50], axis=1)).max() <= 16


def test_exif_rotated_files_display_upright(demo, specs):
    out, manifest = demo
    for row in manifest.filter(pl.col("special") == "exif_rotated").iter_rows(named=True):
        upright = draw_image(specs[row["image_id"]])
        with Image.open(out / row["file_name"]) as stored:
            shown = ImageOps.exif_transpose(stored)
            assert shown.size == upright.size
            assert _coarse_diff(shown, upright) < 3
            if stored.size == upright.size:  # turned by 180 degrees, or square
                assert _coarse_diff(stored, upright) > 3 * _coarse_diff(shown, upright)


def test_animated_files_start_with_the_picture(demo, specs):
    out, manifest = demo
    for row in manifest.filter(pl.col("special") == "animated").iter_rows(named=True):
        picture = draw_image(specs[row["image_id"]]).convert("RGB")
        with Image.open(out / row["file_name"]) as anim:
            first = anim.convert("RGB")
            anim.seek(1)
            second = anim.convert("RGB")
        assert _coarse_diff(first, picture) < 3
        moved = np.abs(_pixels(second) - _pixels(first)).max(axis=-1) > 30
        assert moved.mean() > 0.005


def test_lossless_files_hold_exactly_the_planned_picture(demo, specs):
    out, manifest = demo
    pngs = manifest.filter((pl.col("special") == "") & (pl.col("file_ext") == "png")).head(12)
    for row in pngs.iter_rows(named=True):
        with Image.open(out / row["file_name"]) as img:
            assert np.array_equal(np.asarray(img), np.asarray(draw_image(specs[row["image_id"]])))
    for row in manifest.filter(pl.col("special") == "gray16").iter_rows(named=True):
        grey = draw_image(specs[row["image_id"]]).convert("L")
        with Image.open(out / row["file_name"]) as img:
            assert np.array_equal(np.asarray(img, np.uint16) // 257, np.asarray(grey))


def test_alpha_specials_have_a_transparent_background(demo):
    out, manifest = demo
    alpha = manifest.filter(pl.col("special").is_in(["palette_alpha", "la"]))
    for row in alpha.iter_rows(named=True):
        with Image.open(out / row["file_name"]) as img:
            opacity = np.asarray(img.convert("RGBA").getchannel("A"))
        assert opacity[0, 0] == 0 and opacity[opacity.shape[0] // 2, opacity.shape[1] // 2] == 255
        assert 0.2 < (opacity == 0).mean() < 0.9


def test_same_seed_gives_the_same_bytes_whatever_the_workers(tmp_path, demo):
    one = build_images(tmp_path / "one", seed=0, n_images=60, workers=1)
    two = build_images(tmp_path / "two", seed=0, n_images=60, workers=2)
    assert one.equals(two)
    for name in one["file_name"]:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    # An image keeps its id and bytes across build sizes unless it became a special file.
    _, big = demo
    both = one.join(big, on="image_id", suffix="_big")
    both = both.filter((pl.col("special") == "") & (pl.col("special_big") == ""))
    assert both.height > 40 and (both["md5"] == both["md5_big"]).all()


def test_another_seed_gives_other_files(tmp_path):
    first = build_images(tmp_path / "a", seed=1, n_images=60)
    second = build_images(tmp_path / "b", seed=2, n_images=60)
    empty_file = hashlib.md5(b"").hexdigest()
    assert set(first["md5"]) & set(second["md5"]) == {empty_file}


def test_empty_and_tiny_builds(tmp_path):
    empty = build_images(tmp_path / "empty", n_images=0)
    assert empty.height == 0 and dict(empty.schema) == MANIFEST_SCHEMA
    tiny = build_images(tmp_path / "tiny", n_images=5)
    assert tiny["image_id"].to_list() == list(range(5))
    with pytest.raises(ValueError):
        build_images(tmp_path / "bad", n_images=5, workers=0)


def _equal_right_neighbour(pixels: np.ndarray) -> float:
    same = pixels[:, 1:] == pixels[:, :-1]
    return float((same.all(axis=-1) if same.ndim == 3 else same).mean())


def _lineart(px: np.ndarray) -> bool:
    greyish = (px.max(axis=-1).astype(int) - px.min(axis=-1) <= 8).all()
    return greyish and (px[..., 0] > 200).mean() > 0.8 and (px[..., 0] < 100).mean() > 0.003


def _colours(px: np.ndarray) -> int:
    packed = px.astype(np.int32) @ np.array([1 << 16, 1 << 8, 1], np.int32)
    return len(np.unique(packed))


def _comic(px: np.ndarray) -> bool:
    return (px == 255).all(axis=-1).mean() > 0.03 and (px == 0).all(axis=-1).mean() > 0.005


# What makes each style recognisable, measured on the pristine drawing.
STYLE_SIGNATURES = {
    "flat": lambda px: px.ndim == 3 and _equal_right_neighbour(px) > 0.9,
    "lineart": _lineart,
    "monochrome": lambda px: px.ndim == 2 and len(np.unique(px)) > 32,
    "pixel_art": lambda px: _colours(px) <= 64 and _equal_right_neighbour(px) > 0.8,
    "comic": _comic,
    # Lit surfaces: a flat image has about one colour per row of its gradient, a render many.
    "3d": lambda px: px.ndim == 3 and _colours(px) > 2 * px.shape[0] and not _comic(px),
    "traditional": lambda px: np.median(px) > 150 and _equal_right_neighbour(px) < 0.5,
}


@pytest.mark.parametrize("style", STYLES)
def test_each_style_has_its_signature(style):
    for i, motif in enumerate(MOTIFS):
        size = [(512, 384), (384, 576), (640, 360), (400, 400)][i]
        img = draw_illustration(style, motif, size, np.random.default_rng([9, i]))
        assert img.size == size
        assert STYLE_SIGNATURES[style](np.asarray(img)), (style, motif)
    flat = np.asarray(draw_illustration("flat", "house", (400, 300), np.random.default_rng(1)))
    assert style == "flat" or not STYLE_SIGNATURES[style](flat)


def _sharpness(img: Image.Image) -> float:
    return float(ndimage.laplace(_pixels(img.convert("L"))).var())


SOURCES = {
    "comic": ImageSpec(subject="house", style="comic", width=512, height=384),
    "photo": ImageSpec(origin="photo", subject="astronaut", style="photo", width=512, height=512),
}


@pytest.mark.parametrize("source", SOURCES)
def test_degradation_grows_with_level(source):
    pristine = draw_image(SOURCES[source])
    levels = range(1, MAX_LEVEL + 1)

    def series(kind, measure):
        rng = np.random.default_rng(0)
        return [measure(degrade(pristine, kind, lvl, rng)) for lvl in levels]

    sharpness = [_sharpness(pristine)]
    for kind in ("blur", "downscale"):
        values = sharpness + series(kind, _sharpness)
        assert all(a > b for a, b in pairwise(values)), (kind, values)
    noise = [0.0] + series("noise", lambda img: float((_pixels(img) - _pixels(pristine)).std()))
    assert all(a < b for a, b in pairwise(noise)), noise
    error = [0.0] + series("jpeg", lambda img: _mean_abs_diff(img, pristine))
    assert all(a < b for a, b in pairwise(error)), error


def test_degrade_refuses_an_inconsistent_level():
    img = Image.new("RGB", (8, 8))
    for kind, level in [("none", 2), ("blur", 0), ("blur", MAX_LEVEL + 1)]:
        with pytest.raises(ValueError):
            degrade(img, kind, level, np.random.default_rng(0))
