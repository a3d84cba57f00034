"""A raw file already embedded is embedded again when images of its posts arrive later."""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl

from assets.embeddings.pending import new_images
from tests.images.helpers import index_of


def test_images_that_arrive_later_are_pending(tmp_path: Path):
    root = tmp_path / "images"
    root.mkdir()
    data = [b"one", b"two"]
    md5 = [hashlib.md5(d).hexdigest() for d in data]
    posts = pl.DataFrame(
        {
            "site": ["danbooru", "danbooru"],
            "post_id": [1, 2],
            "md5": md5,
            "sha512": pl.Series([None, None], dtype=pl.String),
            "file_ext": ["jpg", "jpg"],
        }
    )
    (root / f"{md5[0]}.jpg").write_bytes(data[0])
    requested = pl.DataFrame({"image_key": [md5[0]]})
    assert new_images(posts, requested, index_of(tmp_path, root), ("mp4",)) == 0
    (root / "fetched" / "danbooru" / md5[1][:2]).mkdir(parents=True)
    (root / "fetched" / "danbooru" / md5[1][:2] / f"{md5[1]}.jpg").write_bytes(data[1])
    assert new_images(posts, requested, index_of(tmp_path, root), ("mp4",)) == 1
