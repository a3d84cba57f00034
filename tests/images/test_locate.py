"""Every layout the locator reads, located from the index and read back byte for byte:
loose files by md5 and by sha512, a Philomena post's md5-named file, img2dataset output with
sha256-only sidecars and saved post keys, a danbooru2023 post-id tar, an index file pointing
at tar members."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import polars as pl
import pytest
from PIL import Image

from assets.embeddings.scope import scope
from assets.images.decode import decode, read_bytes
from assets.images.locate import LOCATED, locate
from tests.images.helpers import index_of, write_tar


def _jpeg(value: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (value, value, value)).save(out, "JPEG", quality=95)
    return out.getvalue()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def sha512(data: bytes) -> str:
    return hashlib.sha512(data).hexdigest()


@pytest.fixture
def store(tmp_path: Path):
    """Nine pictures, each kept in another way."""
    root = tmp_path / "images"
    (root / "ab").mkdir(parents=True)
    data = [_jpeg(25 * i) for i in range(9)]
    (root / "ab" / f"{md5(data[0])}.jpg").write_bytes(data[0])  # loose, md5
    (root / f"{sha512(data[1])}.png").write_bytes(data[1])  # loose, sha512 (Philomena)
    (root / f"{md5(data[2])}.jpg").write_bytes(data[2])  # a Philomena post's md5-named file
    sidecar = {"sha256": hashlib.sha256(data[3]).hexdigest(), "url": "u"}
    write_tar(
        root / "img2dataset" / "00000.tar",
        [
            ("000000000.jpg", data[3]),  # img2dataset's default: sha256 only
            ("000000000.json", json.dumps(sidecar).encode()),
            ("000000000.txt", b"caption"),
            ("000000001.jpg", data[4]),  # saved post key
            ("000000001.json", json.dumps({"post_key": "e621:5", "sha256": "x"}).encode()),
            ("000000002.jpg", data[5]),  # saved site and post id
            ("000000002.json", json.dumps({"site": "gelbooru", "post_id": "6"}).encode()),
        ],
    )
    hb = tmp_path / "danbooru2023"
    write_tar(hb / "data-0000.tar", [("7.jpg", data[6]), ("8.webp", data[7])])
    other = write_tar(tmp_path / "other" / "x.tar", [("pics/a.jpg", data[8])])
    listing = tmp_path / "listing.csv"
    pl.DataFrame({"path": [str(other)], "member": ["pics/a.jpg"], "md5": [md5(data[8])]}).write_csv(
        listing
    )
    sources = [
        {"path": str(root)},
        {"path": str(hb), "layout": "post_id", "site": "danbooru"},
        {"index": str(listing)},
    ]
    posts = pl.DataFrame(
        {
            "site": ["danbooru", "derpibooru", "derpibooru", "danbooru", "e621", "gelbooru"]
            + ["danbooru", "danbooru", "e621", "e621"],
            "post_id": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
            "md5": [md5(data[0]), None, None, md5(data[3]), md5(data[4]), md5(data[5])]
            + [md5(data[6]), md5(data[7]), md5(data[8]), "0" * 32],
            "sha512": [None, sha512(data[1]), sha512(data[2])] + [None] * 7,
            "file_ext": ["jpg"] * 9 + ["mp4"],
        }
    )
    return tmp_path, root, sources, posts, data


def test_every_layout_is_located_and_reads_back(store):
    home, root, sources, posts, data = store
    index = index_of(home, root, sources, posts)
    found = locate(posts, index).sort("post_id")
    assert found.schema == pl.Schema(LOCATED)
    assert found["post_id"].to_list() == list(range(1, 10))
    for row, expected in zip(found.iter_rows(named=True), data, strict=True):
        got = read_bytes(Path(row["path"]), row["offset"], row["length"])
        assert got == expected
        assert decode(got, 10**6).size == (32, 24)
    assert set(found.filter(pl.col("offset") >= 0)["post_id"]) == {4, 5, 6, 7, 8, 9}


def test_the_image_key_stays_the_posts(store):
    home, root, sources, posts, _ = store
    found = locate(posts, index_of(home, root, sources, posts))
    assert found.filter(pl.col("site") == "danbooru")["image_key"].to_list()[0] == posts["md5"][0]
    assert found.filter(pl.col("post_id") == 2)["image_key"][0].startswith("sha512:")


def test_scope_counts_what_is_not_embedded(store):
    home, root, sources, posts, _ = store
    found = scope(posts, index_of(home, root, sources, posts), ("mp4", "webm"))
    assert (found.posts, found.not_images, found.without_file, found.requested) == (10, 1, 0, 9)


def test_a_bad_index_file_is_named(store):
    home, root, _, posts, _ = store
    bad = home / "bad.csv"
    pl.DataFrame({"file": ["a.jpg"]}).write_csv(bad)
    with pytest.raises(ValueError, match="needs a `path` column"):
        index_of(home / "h1", root, [{"index": str(bad)}])
    with pytest.raises(FileNotFoundError, match="image index not found"):
        index_of(home / "h2", root, [{"index": str(home / "none.parquet")}])
