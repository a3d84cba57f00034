"""The current state of every post: one row per (site, post_id) across all ingested files.

A post can arrive in several files (a dump, then API pages); the newest record wins: by the
site's `updated_at`, then by the later ingestion, then by the later record in the file.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from assets.ingest.schema import POSTS
from orchestration import objectstore
from orchestration.objectstore import Location

KEY = ("site", "post_id")


def repeated(values: np.ndarray) -> np.ndarray:
    """Which values occur more than once (a sort: numpy's is far faster than hashing)."""
    order = np.argsort(values)
    equal = values[order][1:] == values[order][:-1]
    sorted_mask = np.zeros(len(values), bool)
    sorted_mask[1:] |= equal
    sorted_mask[:-1] |= equal
    mask = np.empty(len(values), bool)
    mask[order] = sorted_mask
    return mask


def current_posts(files: Sequence[Location], columns: Sequence[str] | None = None) -> pl.DataFrame:
    """Newest record per post from these raw_posts files (only `columns`, if given).

    Most posts appear once: only rows whose post id repeats (on any site) are sorted."""
    wanted = list(dict.fromkeys([*KEY, *(columns or POSTS)]))
    if not files:
        return pl.DataFrame(schema={c: POSTS[c] for c in wanted})
    order = ["updated_at", "ingested_at", "record"]
    frame = objectstore.read_parquet(files, columns=list(dict.fromkeys(wanted + order)))
    again = pl.Series(repeated(frame["post_id"].to_numpy()))
    if not again.any():
        return frame.select(wanted)
    newest = (
        frame.filter(again)
        .sort(order, descending=True, nulls_last=True)
        .unique(subset=list(KEY), keep="first", maintain_order=True)
    )
    return pl.concat([frame.filter(~again), newest]).select(wanted)
