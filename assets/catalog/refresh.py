"""The catalog's posts brought up to date with normalized_scores: by its change files when the
catalog has applied every earlier one (a daily run reads what changed, not every post), else
by every current post (first run, a run of normalized_scores that worked everything out
again, or a catalog further behind than the change files kept)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import polars as pl

from assets.catalog.writer import (
    POST_COLUMNS,
    SCORE_COLUMNS,
    SCORE_STATE,
    Refreshed,
    apply_post_changes,
    catalog_posts,
    refresh_current,
)
from assets.ingest.paths import posts_files
from assets.normalize import changes, store
from assets.normalize.assets import scores_root
from assets.pool.schema import post_key_expr
from orchestration import objectstore
from orchestration.sqlfiles import run_script
from orchestration.storage import Layout

APPLIED = "normalize_seq"  # catalog_state: the last change file of normalized_scores applied


@dataclass(frozen=True)
class Refresh:
    mode: str  # "changes" (change files applied) or "full" (every current post read)
    files: int  # change files applied (0 on a full refresh)
    refreshed: list[Refreshed]

    @property
    def written(self) -> int:
        return sum(r.written for r in self.refreshed)

    @property
    def dropped(self) -> int:
        return sum(r.dropped for r in self.refreshed)

    @property
    def updated(self) -> int:
        return sum(r.updated for r in self.refreshed)


def refresh(con: duckdb.DuckDBPyConnection, layout: Layout, now: datetime) -> Refresh:
    """Bring `posts` up to date; what it changed."""
    root = scores_root(layout)
    state = store.State.read(root)
    found = run_script(con, "catalog/state", {"key": APPLIED}).fetchone()
    pending = changes.since(root, found[0] if found else None)
    if pending is None:
        parts = store.part_files(root)
        done = Refresh("full", 0, [refresh_current(con, parts, posts_files(layout), now)])
    else:
        done = Refresh("changes", len(pending), [_apply(con, c, now) for c in pending])
    if state is not None:
        run_script(con, "catalog/set_state", {"key": APPLIED, "value": state.seq})
    return done


def _apply(con: duckdb.DuckDBPyConnection, change: changes.Change, now: datetime) -> Refreshed:
    frame = objectstore.read_parquet(change.path)
    if frame.height == 0:
        return apply_post_changes(con, pl.DataFrame(schema={"post_key": pl.String}))
    upserts = frame.filter(pl.col("kind") == changes.UPSERT)
    current = upserts.select(list(POST_COLUMNS)).cast(POST_COLUMNS)
    rows = catalog_posts(current, upserts.select(*SCORE_COLUMNS, *SCORE_STATE), now)
    values = frame.filter(pl.col("kind") == changes.VALUES).select(
        post_key_expr().alias("post_key"),
        "norm_score",
        "is_canonical",
        "immature",
    )
    return apply_post_changes(con, rows, values)
