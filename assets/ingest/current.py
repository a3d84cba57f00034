"""The current state of every post: one row per (site, post_id) across all ingested files.

A post can arrive in several files (a dump, then API pages); the newest record wins: by the
site's `updated_at`, then by the later ingestion, then by the later record in the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from assets.ingest.schema import POSTS

KEY = ("site", "post_id")


def current_posts(files: Sequence[Path], columns: Sequence[str] | None = None) -> pl.LazyFrame:
    """Newest record per post from these raw_posts files (only `columns`, if given)."""
    if not files:
        return pl.LazyFrame(schema={c: POSTS[c] for c in (columns or POSTS)})
    wanted = list(dict.fromkeys([*KEY, *(columns or POSTS)]))
    order = ["updated_at", "ingested_at", "record"]
    scan = pl.scan_parquet([str(f) for f in files]).select(list(dict.fromkeys(wanted + order)))
    newest = scan.sort(order, descending=True, nulls_last=True).unique(
        subset=list(KEY), keep="first", maintain_order=False
    )
    return newest.select(wanted)
