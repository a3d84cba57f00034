"""Where the bytes of each post's image are, read from the image index (never a scan).

`locate(posts, index)` is what every stage calls: posts (site, post_id, md5, sha512, and
optionally image_key) in, one LOCATION row per post found out.
"""

from __future__ import annotations

import polars as pl

LOCATION: dict[str, pl.DataType] = {
    "image_key": pl.String,
    "path": pl.String,  # absolute: the file, or the tar shard holding it
    "offset": pl.Int64,  # -1: the whole file; else the member's byte offset in the tar
    "length": pl.Int64,  # -1 for a whole file
    "file_ext": pl.String,
}
LOCATED: dict[str, pl.DataType] = {"site": pl.String, "post_id": pl.Int64, **LOCATION}


def locate(posts: pl.DataFrame, index: pl.DataFrame) -> pl.DataFrame:
    """LOCATED rows (site, post_id + LOCATION) for the posts whose image `index` holds."""
    raise NotImplementedError
