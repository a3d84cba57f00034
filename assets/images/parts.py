"""Where one source's index entries are kept: parquet parts under `parts/<source>/`, and
`units.parquet`, which part holds the entries of each unit (a folder listed, a tar shard or
an index file read).

A rescan rewrites the parts of the units it re-read. Units never seen before go to parts of
their own, made in that scan (about PART_ROWS entries each), so a day's downloads landing in
a new folder tree add a small part rather than rewriting parts spread over the whole store.
Parts are written before the map that names them: a part the map does not name (a scan
killed in between) is never read, and is removed by the next rewrite.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from pathlib import Path

import polars as pl

from orchestration.atomic import read_parquet_or_empty, write_parquet

PART_ROWS = 16_384
UNITS: dict[str, pl.DataType] = {"unit": pl.String, "part": pl.String}


class Parts:
    """The parts of one source under `folder`; entries carry their unit in column `dir`."""

    def __init__(self, folder: Path, schema: dict[str, pl.DataType]) -> None:
        self.folder = folder
        self.schema = schema

    @property
    def _map_path(self) -> Path:
        return self.folder / "units.parquet"

    def _path(self, part: str) -> Path:
        return self.folder / f"p-{part}.parquet"

    def units(self) -> dict[str, str]:
        if not self._map_path.is_file():
            return {}
        return dict(pl.read_parquet(self._map_path).iter_rows())

    def files(self) -> list[Path]:
        """The part files the map names (the entries of the source)."""
        return [self._path(p) for p in sorted(set(self.units().values()))]

    def _new_parts(self, fresh: pl.DataFrame, where: dict[str, str]) -> dict[str, pl.DataFrame]:
        """The entries of units seen for the first time, in new parts of about PART_ROWS."""
        count = max(1, math.ceil(fresh.height / PART_ROWS))
        generation = 1 + max((int(p.split("-")[0]) for p in where.values()), default=0)
        names = {u: f"{generation:06d}-{zlib.crc32(u.encode()) % count:03d}" for u in fresh["dir"]}
        tagged = fresh.with_columns(part=pl.col("dir").replace_strict(names))
        return {part: frame.drop("part") for (part,), frame in tagged.group_by("part")}

    def rewrite(self, units: set[str], build: Callable[[pl.DataFrame], pl.DataFrame]) -> int:
        """Replace the entries of `units` with `build(their entries now)`; returns the part
        files written."""
        if not units:
            return 0
        self.folder.mkdir(parents=True, exist_ok=True)
        where = self.units()
        touched = sorted({where[u] for u in units if u in where})
        old = {part: read_parquet_or_empty(self._path(part), self.schema) for part in touched}
        before = [frame.filter(pl.col("dir").is_in(list(units))) for frame in old.values()]
        fresh = build(pl.concat(before) if before else pl.DataFrame(schema=self.schema))
        seen = fresh["dir"].is_in(list(where))
        kept_units = {u: where[u] for u in fresh.filter(seen)["dir"].unique()}
        written = {}
        for part, frame in old.items():
            here = [u for u, p in kept_units.items() if p == part]
            written[part] = pl.concat(
                [
                    frame.filter(~pl.col("dir").is_in(list(units))),
                    fresh.filter(pl.col("dir").is_in(here)),
                ]
            )
        written.update(self._new_parts(fresh.filter(~seen), where) if (~seen).any() else {})
        for part, frame in written.items():
            if frame.height:
                write_parquet(frame, self._path(part))
        now = {u: p for u, p in where.items() if u not in units}
        now.update(kept_units)
        for part, frame in written.items():
            now.update({u: part for u in frame["dir"].unique() if u in units})
        write_parquet(pl.DataFrame(list(now.items()), schema=UNITS, orient="row"), self._map_path)
        self._remove_unnamed(set(now.values()))
        return sum(1 for frame in written.values() if frame.height)

    def _remove_unnamed(self, named: set[str]) -> None:
        for path in self.folder.glob("p-*.parquet"):
            if path.stem[2:] not in named:
                path.unlink()
