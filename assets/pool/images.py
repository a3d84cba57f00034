"""Which image files the image root holds, and which post each belongs to.

Files are named by their md5 (`<md5>.<ext>`, flat or in sub-folders), as boorus and their
downloaders name them. Philomena posts carry no md5, only the sha512 of their file: files
whose name matches no post's md5 are hashed (once; the hashes are cached by path, size and
modification time) and matched by sha512.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from orchestration.atomic import write_parquet

MD5_NAME = re.compile(r"^[0-9a-f]{32}$")
# Files worth hashing to find a Philomena post's image (never tar shards or sidecars).
IMAGE_EXTS = ("jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff", "avif", "jxl")
FILES: dict[str, pl.DataType] = {
    "image_path": pl.String,
    "md5": pl.String,
    "file_ext": pl.String,
    "size": pl.Int64,
    "mtime_ns": pl.Int64,
}


def _walk(root: Path) -> Iterator[os.DirEntry]:
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif entry.is_file():
                    yield entry


def scan(root: Path) -> pl.DataFrame:
    """Every file under the image root: its path (relative), the md5 its name gives (or
    null), extension, size and modification time."""
    rows = []
    if root.is_dir():
        for entry in _walk(root):
            stem, _, ext = entry.name.partition(".")
            stat = entry.stat()
            rows.append(
                (
                    str(Path(entry.path).relative_to(root)),
                    stem.lower() if MD5_NAME.match(stem.lower()) else None,
                    ext.lower(),
                    stat.st_size,
                    stat.st_mtime_ns,
                )
            )
    return pl.DataFrame(rows, schema=FILES, orient="row").sort("image_path")


def _sha512(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha512").hexdigest()


def sha512s(root: Path, files: pl.DataFrame, cache: Path) -> pl.DataFrame:
    """`files` with a `sha512` column, computed for files not in the cache (or changed)."""
    key = ["image_path", "size", "mtime_ns"]
    known = (
        pl.read_parquet(cache)
        if cache.is_file()
        else pl.DataFrame(schema={**{k: FILES[k] for k in key}, "sha512": pl.String})
    )
    merged = files.join(known, on=key, how="left")
    missing = merged.filter(pl.col("sha512").is_null())
    if missing.height:
        hashed = missing.with_columns(
            sha512=pl.Series([_sha512(root / p) for p in missing["image_path"]], dtype=pl.String)
        )
        merged = pl.concat([merged.filter(pl.col("sha512").is_not_null()), hashed])
        write_parquet(merged.select(*key, "sha512"), cache)
    return merged


def image_files(posts: pl.DataFrame, root: Path, cache: Path) -> pl.DataFrame:
    """For each post (site, post_id, md5, sha512): the path of its image file, or null.

    A post's file is the one named by its md5; for a post without md5, the file (among
    those no md5 claims) whose sha512 matches.
    """
    files = scan(root)
    by_md5 = files.filter(pl.col("md5").is_not_null()).unique("md5", keep="first")
    found = posts.join(by_md5.select("md5", "image_path"), on="md5", how="left")
    needs_sha = found.filter(pl.col("image_path").is_null() & pl.col("sha512").is_not_null())
    if needs_sha.height == 0:
        return found.select("site", "post_id", "image_path")
    claimed = posts["md5"].drop_nulls().implode()
    unclaimed = ~pl.col("md5").is_in(claimed) | pl.col("md5").is_null()
    orphans = sha512s(root, files.filter(unclaimed & pl.col("file_ext").is_in(IMAGE_EXTS)), cache)
    by_sha = orphans.unique("sha512", keep="first").select("sha512", sha_path="image_path")
    found = found.join(by_sha, on="sha512", how="left").with_columns(
        image_path=pl.coalesce("image_path", "sha_path")
    )
    return found.select("site", "post_id", "image_path")
