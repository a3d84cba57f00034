"""Finding an image's bytes: loose files, webdataset tar shards (by key or sidecar), an index."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import polars as pl
import pytest
from PIL import Image

from assets.embeddings.decode import decode, read_bytes
from assets.embeddings.locate import LOCATION, locate
from assets.embeddings.scope import scope
from assets.normalize.images import with_image_key


def _jpeg(value: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (value, value, value)).save(out, "JPEG", quality=95)
    return out.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


@pytest.fixture
def images(tmp_path: Path) -> tuple[Path, list[bytes]]:
    """Five images: one loose, two in a shard keyed by md5 and sha512, one in a shard known
    only from its json sidecar (as img2dataset writes it), one only in an index file."""
    root = tmp_path / "images"
    (root / "shards").mkdir(parents=True)
    data = [_jpeg(40 * i) for i in range(5)]
    md5 = [hashlib.md5(d).hexdigest() for d in data]
    (root / f"{md5[0]}.jpg").write_bytes(data[0])
    with tarfile.open(root / "shards" / "00000.tar", "w") as tar:
        _add(tar, f"{md5[1]}.jpg", data[1])
        _add(tar, f"{hashlib.sha512(data[2]).hexdigest()}.webp.jpg", data[2])
        _add(tar, "000003.jpg", data[3])
        _add(tar, "000003.json", json.dumps({"md5": md5[3], "url": "x"}).encode())
        _add(tar, "000003.txt", b"a caption")
    elsewhere = tmp_path / "elsewhere.jpg"
    elsewhere.write_bytes(data[4])
    pl.DataFrame({"md5": [md5[4]], "path": [str(elsewhere)]}).write_csv(tmp_path / "index.csv")
    return root, data


def _posts(data: list[bytes]) -> pl.DataFrame:
    return with_image_key(
        pl.DataFrame(
            {
                "site": ["danbooru", "e621", "derpibooru", "gelbooru", "danbooru", "e621"],
                "post_id": [1, 2, 3, 4, 5, 6],
                "md5": [
                    *(hashlib.md5(d).hexdigest() for d in data[:2]),
                    None,
                    *(hashlib.md5(d).hexdigest() for d in data[3:]),
                    "0" * 32,
                ],
                "sha512": [None, None, hashlib.sha512(data[2]).hexdigest(), None, None, None],
                "file_ext": ["jpg", "jpg", "jpg", "jpg", "jpg", "mp4"],
            }
        )
    )


def test_every_kind_of_location_reads_back_the_right_bytes(images, tmp_path):
    root, data = images
    posts = _posts(data)
    found = locate(posts, root, tmp_path / "cache", tmp_path / "index.csv")
    assert found.schema == pl.Schema(LOCATION) and found.height == 5
    by_key = {r["image_key"]: r for r in found.iter_rows(named=True)}
    for key, expected in zip(posts["image_key"][:5], data, strict=True):
        row = by_key[key]
        assert read_bytes(Path(row["path"]), row["offset"], row["length"]) == expected
        assert decode(read_bytes(Path(row["path"]), row["offset"], row["length"]), 10**6).size == (
            32,
            24,
        )
    in_tar = found.filter(pl.col("offset") >= 0)
    assert in_tar.height == 3 and set(in_tar["path"]) == {str(root / "shards" / "00000.tar")}


def test_the_shard_index_is_cached_until_the_shard_changes(images, tmp_path):
    root, data = images
    cache = tmp_path / "cache"
    locate(_posts(data), root, cache)
    members = pl.read_parquet(cache / "tar_members.parquet")
    assert members.height == 3
    with tarfile.open(root / "shards" / "00001.tar", "w") as tar:
        _add(tar, f"{hashlib.md5(b'x').hexdigest()}.png", b"x")
    locate(_posts(data), root, cache)
    assert pl.read_parquet(cache / "tar_members.parquet").height == 4


def test_scope_counts_what_is_not_embedded(images, tmp_path):
    root, data = images
    found = scope(_posts(data), root, tmp_path / "cache", ("mp4", "webm", "swf"))
    assert (found.posts, found.not_images, found.without_file, found.requested) == (6, 1, 1, 4)


def test_a_bad_index_file_is_named(images, tmp_path):
    root, data = images
    bad = tmp_path / "bad.csv"
    pl.DataFrame({"file": ["a.jpg"]}).write_csv(bad)
    with pytest.raises(ValueError, match="needs a `path` column"):
        locate(_posts(data), root, tmp_path / "cache", bad)
    with pytest.raises(FileNotFoundError, match="image index not found"):
        locate(_posts(data), root, tmp_path / "cache", tmp_path / "none.parquet")
