"""What every adapter's tests do: ingest a file through the reader, and compare what came
back with the demo's ground truth, column by column."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from assets.ingest.reader import FileReport, ingest_file
from orchestration.storage import Layout


def ingest(path: Path, tmp_path: Path, **kwargs) -> tuple[FileReport, pl.DataFrame, ...]:
    """(report, posts, quarantine, skipped) of one file."""
    outs = [tmp_path / f"{path.name}.{table}.parquet" for table in ("posts", "q", "s")]
    report = ingest_file(path, *outs, **kwargs)
    return report, *(pl.read_parquet(out) for out in outs)


def demo_truth(layout: Layout, kind: str) -> pl.DataFrame:
    """The demo's ground truth for one source kind (danbooru_api, e621_csv, ...)."""
    posts = pl.read_parquet(layout.demo / "posts.parquet")
    return posts.filter(pl.col("source_kind") == kind)


def assert_read_back(read: pl.DataFrame, truth: pl.DataFrame, columns: Sequence[str]) -> None:
    """Every post of `truth` was read, once, with these columns' values (keyed by post_id)."""
    columns = ["post_id", *(c for c in columns if c != "post_id")]
    joined = truth.select(columns).join(read.select(columns), on="post_id", suffix="_read")
    assert joined.height == truth.height == read.height, (joined.height, truth.height, read.height)
    for column in columns[1:]:
        mismatch = joined.filter(pl.col(column).ne_missing(pl.col(f"{column}_read")))
        assert mismatch.height == 0, (
            column,
            mismatch.select("post_id", column, f"{column}_read").head(5),
        )
