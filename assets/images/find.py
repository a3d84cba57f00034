"""The image index of a profile: scan it, load it, locate posts with it.

Stages call `located(layout, settings, posts)` (or `load_index` once and `locate` many
times); only `scan` (the image_index asset, `scoretag images scan`) reads the sources. A
profile whose index was never built gets it built on first use, once.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from assets.images import index
from assets.images.locate import locate, unclaimed_sha512s
from assets.images.paths import index_dir
from assets.images.sources import Source, sources_of
from assets.images.tars import digests
from assets.ingest.current import current_posts
from assets.ingest.paths import posts_files
from orchestration.atomic import read_parquet_or_empty, write_parquet
from orchestration.settings import Settings
from orchestration.storage import Layout

SCANS = {"count": 0}  # scans made in this process: a pool draw or an embedding adds none


def sources(layout: Layout, settings: Settings) -> list[Source]:
    return sources_of(settings, layout.images)


def _hash_sha512(folder: Path, entries: pl.DataFrame, posts: pl.DataFrame) -> int:
    """Hash, once, the md5-named images that may be the posts known only by a sha512."""
    todo = unclaimed_sha512s(posts, entries)
    if todo.height == 0:
        return 0
    rows = []
    for path, offset, length in todo.iter_rows():
        try:
            with open(path, "rb") as f:
                size = length if length >= 0 else Path(path).stat().st_size
                rows.append((path, offset, digests(f, max(offset, 0), size)[1]))
        except OSError:
            continue
    schema = {"path": pl.String, "offset": pl.Int64, "sha512": pl.String}
    target = folder / "sha512.parquet"
    known = read_parquet_or_empty(target, schema)
    merged = pl.concat([known, pl.DataFrame(rows, schema=schema, orient="row")])
    write_parquet(
        merged.join(entries.select("path", "offset"), on=["path", "offset"], how="semi"), target
    )
    return len(rows)


def scan(
    layout: Layout,
    settings: Settings,
    posts: pl.DataFrame | None = None,
    progress: index.Progress | None = None,
) -> index.ScanReport:
    """Refresh the index from what changed; with `posts` (md5, sha512), also hash the
    md5-named images that may be Philomena posts' (known only by a sha512)."""
    SCANS["count"] += 1
    folder = index_dir(layout)
    found = sources(layout, settings)
    report = index.refresh(folder, found, progress)
    if posts is not None and posts["md5"].null_count():
        report.files_hashed += _hash_sha512(folder, index.load(folder, found), posts)
    return report


def load_index(
    layout: Layout, settings: Settings, posts: pl.DataFrame | None = None
) -> pl.DataFrame:
    """The index's entries, built by a first scan if there is none yet. With `posts` (md5,
    sha512; a raw file's, ingested after the last scan), the md5-named images that may be
    their Philomena posts' are hashed first, once (no folder is listed)."""
    folder = index_dir(layout)
    if not index.exists(folder):
        scan(layout, settings, current_posts(posts_files(layout), ["md5", "sha512"]))
    found = sources(layout, settings)
    entries = index.load(folder, found)
    if posts is not None and unclaimed_sha512s(posts, entries).height:
        everyone = current_posts(posts_files(layout), ["md5", "sha512"])
        if _hash_sha512(folder, entries, everyone):
            entries = index.load(folder, found)
    return entries


def located(layout: Layout, settings: Settings, posts: pl.DataFrame) -> pl.DataFrame:
    """Where the images of `posts` are (see locate.locate), from the persisted index."""
    return locate(posts, load_index(layout, settings))
