"""normalized_scores' change files: what each run changed, for the catalog to apply instead of
reading every post again.

An incremental run writes `changes/<seq>.parquet`, one row per post it changed:
- `upsert`: a post whose record changed (new, or a newer record): its whole raw row (every
  column of raw_posts) and its normalized values;
- `values`: a post whose record did not change but whose norm_score, canonical flag or
  maturity did (its cohort's reference moved, or its image changed hands).
A run that worked everything out again writes `changes/<seq>.full` instead: a reader then
reads every post. The newest `[normalize] keep_changes` files are kept; a reader further
behind finds a gap and reads everything.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from assets.normalize import store
from orchestration import objectstore
from orchestration.objectstore import Location
from orchestration.sqlfiles import run_script

UPSERT, VALUES = "upsert", "values"


@dataclass(frozen=True)
class Change:
    seq: int
    full: bool
    path: Location


def _name(seq: int) -> str:
    return f"{seq:09d}"


def write_delta(
    con: duckdb.DuckDBPyConnection, root: Location, seq: int, new_files: list[str]
) -> dict[str, int]:
    """Write run `seq`'s changes (tables `winners`, `result`, and the parts before rewriting)
    and return their counts."""
    touched = [
        objectstore.url(store.part_path(root, site, period))
        for site, period in con.execute(
            "SELECT DISTINCT site, period FROM result ORDER BY ALL"
        ).fetchall()
        if store.part_path(root, site, period).is_file()
    ]
    upserts = run_script(con, "normalize/changed_records", {"files": new_files}).pl()
    values = (
        run_script(con, "normalize/changed_values", {"parts": touched}).pl()
        if touched
        else pl.DataFrame()
    )
    frame = pl.concat(
        [upserts.with_columns(kind=pl.lit(UPSERT)), values.with_columns(kind=pl.lit(VALUES))],
        how="diagonal_relaxed",
    )
    objectstore.write_parquet(frame, store.changes_dir(root) / f"{_name(seq)}.parquet")
    return {"upserts": upserts.height, "values": values.height}


def mark_full(root: Location, seq: int) -> None:
    objectstore.write_bytes(store.changes_dir(root) / f"{_name(seq)}.full", b"")


def listed(root: Location) -> list[Change]:
    folder = store.changes_dir(root)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        stem, _, suffix = path.name.partition(".")
        if stem.isdigit() and suffix in ("full", "parquet"):
            found.append(Change(int(stem), suffix == "full", path))
    return sorted(found, key=lambda c: c.seq)


def since(root: Location, seq: int | None) -> list[Change] | None:
    """The changes after `seq`, in order; None when they cannot be applied one by one (a
    reader that never read, a full run among them, or a gap): the reader reads everything."""
    state = store.State.read(root)
    if seq is None or state is None:
        return None
    after = [c for c in listed(root) if seq < c.seq <= state.seq]
    if [c.seq for c in after] != list(range(seq + 1, state.seq + 1)):
        return None
    if any(c.full for c in after):
        return None
    return after


def prune(root: Location, seq: int, keep: int) -> None:
    for change in listed(root):
        if change.seq <= seq - keep:
            objectstore.remove(change.path)
