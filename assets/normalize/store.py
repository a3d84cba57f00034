"""Where normalized_scores keeps its rows: one parquet part per (site, upload period), a change
file per run, and a state file saying what the parts were made from.

    <stage dir>/parts/<site>/<period>.parquet   every current post of that site and period
    <stage dir>/changes/<seq>.parquet           what run <seq> changed (see changes.py)
    <stage dir>/changes/<seq>.full              run <seq> worked everything out again
    <stage dir>/state.json                      the raw files and settings the parts are of

A run rewrites only the parts whose rows it changed, and the state last: a run killed before
it leaves a state that makes the next run redo its work.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from orchestration import objectstore
from orchestration.objectstore import Location
from orchestration.settings import NormalizeSettings

FORMAT = 2
NO_PERIOD = "none"  # the part of posts without an upload date
# Settings that change no value: how a run works, not what it works out.
HOW_NOT_WHAT = ("memory_mb", "batch_rows", "keep_changes")


def parts_dir(root: Location) -> Location:
    return root / "parts"


def changes_dir(root: Location) -> Location:
    return root / "changes"


def part_path(root: Location, site: str, period: str | None) -> Location:
    return parts_dir(root) / site / f"{period or NO_PERIOD}.parquet"


def part_files(root: Location) -> list[Location]:
    """Every part of normalized_scores (empty before its first run)."""
    folder = parts_dir(root)
    return sorted(folder.glob("*/*.parquet")) if folder.is_dir() else []


def read_scores(root: Location, columns: list[str] | None = None) -> pl.DataFrame:
    """normalized_scores as one frame (only `columns`, if given)."""
    from assets.normalize.normalize import SCHEMA

    files = part_files(root)
    if not files:
        wanted = columns or list(SCHEMA)
        return pl.DataFrame(schema={c: SCHEMA[c] for c in wanted})
    frame = objectstore.read_parquet(files, columns=columns)
    # Parts are written per site and period: posts in order, as one table would hold them.
    return frame.sort("site", "post_id") if {"site", "post_id"} <= set(frame.columns) else frame


def scan_scores(root: Location) -> pl.LazyFrame:
    from assets.normalize.normalize import SCHEMA

    files = part_files(root)
    return objectstore.scan_parquet(files) if files else pl.LazyFrame(schema=SCHEMA)


def settings_key(settings: NormalizeSettings) -> str:
    """A digest of the settings that shape the values."""
    values = settings.model_dump(mode="json", exclude=set(HOW_NOT_WHAT))
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class State:
    """What the parts were made from: the raw files (key: signature, snapshot), the settings,
    the last change number, and per group (site, rating, period) its cohort and reference
    size, which tell an incremental run which groups a pooled cohort spans."""

    settings: str = ""
    seq: int = 0
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: list[dict[str, Any]] = field(default_factory=list)
    format: int = FORMAT

    @classmethod
    def read(cls, root: Location) -> State | None:
        path = root / "state.json"
        if not path.is_file():
            return None
        found = json.loads(path.read_text())
        if found.get("format") != FORMAT:
            return None
        return cls(**found)

    def write(self, root: Location) -> None:
        text = json.dumps(self.__dict__, indent=1, sort_keys=True, default=str)
        objectstore.write_bytes(root / "state.json", text.encode())
