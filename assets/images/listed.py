"""Images an index file lists: a parquet or CSV file with `path` (absolute, or relative to
the source's folder), an optional `member` (the image's name inside the tar shard `path`),
and at least one key: `md5`, `sha512`, `image_key` or `post_key` (`danbooru:123`)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import polars as pl

from assets.images.names import ext_expr
from assets.images.tarheaders import read_members

KEYS = ("md5", "sha512", "image_key", "post_key")


def read_listing(index: Path) -> pl.DataFrame:
    if not index.is_file():
        raise FileNotFoundError(f"image index not found: {index}")
    frame = pl.read_parquet(index) if index.suffix == ".parquet" else pl.read_csv(index)
    if "path" not in frame.columns or not set(KEYS) & set(frame.columns):
        raise ValueError(
            f"image index {index} needs a `path` column and one of {', '.join(KEYS)} "
            f"(it has {', '.join(frame.columns)})"
        )
    return frame


def _member_table(tars: list[str]) -> pl.DataFrame:
    """(path, member, offset, length) of every file member of the named tar shards."""
    rows = []
    for tar_path in tars:
        try:
            found = read_members(Path(tar_path))
        except (OSError, tarfile.TarError):
            continue  # a missing or unreadable shard: its rows locate nothing
        rows += [(tar_path, m.name, m.offset, m.size) for m in found if m.is_file]
    schema = {"path": pl.String, "member": pl.String, "offset": pl.Int64, "length": pl.Int64}
    return pl.DataFrame(rows, schema=schema, orient="row")


def listed_entries(index: Path, base: Path) -> pl.DataFrame:
    """The index file's rows as index entries: path (absolute), member, offset, length,
    file_ext and the keys (lower-cased hashes)."""
    frame = read_listing(index)
    path = pl.col("path").cast(pl.String)
    frame = frame.with_columns(
        path=pl.when(path.str.starts_with("/")).then(path).otherwise(pl.lit(f"{base}/") + path),
        member=pl.col("member").cast(pl.String)
        if "member" in frame.columns
        else pl.lit(None, pl.String),
    )
    hashes = [
        (pl.col(k).cast(pl.String).str.to_lowercase() if k != "post_key" else pl.col(k))
        if k in frame.columns
        else pl.lit(None, pl.String)
        for k in KEYS
    ]
    frame = frame.select("path", "member", *[h.alias(k) for h, k in zip(hashes, KEYS, strict=True)])
    in_tar = frame.filter(pl.col("member").is_not_null())
    members = _member_table(in_tar["path"].unique().sort().to_list())
    whole = frame.filter(pl.col("member").is_null()).with_columns(
        offset=pl.lit(-1, pl.Int64), length=pl.lit(-1, pl.Int64)
    )
    inside = in_tar.join(members, on=["path", "member"], how="inner")
    out = pl.concat([whole, inside.select(whole.columns)])
    return out.with_columns(file_ext=ext_expr(pl.coalesce("member", "path")))
