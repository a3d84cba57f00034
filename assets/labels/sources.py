"""What the labeling app reads: the rating pool (re-read when its file changes) and the label
store's events (read incrementally)."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from assets.labels import queue
from assets.labels.store import LabelStore

POOL_COLUMNS = ("post_key", "site", "post_id", "image_path", "stratum", "rating", "round")
# Where a tar member's bytes are in its shard; a pool without them holds only whole files.
MEMBER_COLUMNS = ("image_offset", "image_length")


@dataclass(frozen=True)
class Pool:
    rows: dict[str, dict]
    order: list[str]


class PoolFile:
    """The rating pool, re-read whenever its file changes (a round appended while serving)."""

    def __init__(self, path: Path, seed: int):
        self.path, self.seed = Path(path), seed
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._pool = self._read()

    def _stat(self) -> tuple[int, int, int]:
        st = os.stat(self.path)
        return st.st_mtime_ns, st.st_size, st.st_ino

    def _read(self) -> Pool:
        present = pl.read_parquet_schema(self.path)
        columns = [*POOL_COLUMNS, *(c for c in MEMBER_COLUMNS if c in present)]
        frame = pl.read_parquet(self.path, columns=columns)
        rows = {row["post_key"]: row for row in frame.iter_rows(named=True)}
        return Pool(rows=rows, order=queue.labeling_order(frame, self.seed))

    def current(self) -> Pool:
        with self._lock:
            try:
                stamp = self._stat()
                if stamp != self._stamp:
                    self._pool, self._stamp = self._read(), stamp
            except (OSError, pl.exceptions.PolarsError):
                pass  # mid-replacement or briefly missing: keep serving the last good pool
            return self._pool


class EventCache:
    """The store's events frame, kept up to date by reading only new events."""

    def __init__(self, store: LabelStore):
        self.store = store
        self._lock = threading.Lock()
        self._events = store.events()

    def events(self) -> pl.DataFrame:
        """Every event; only those added since the last call are read from the store."""
        with self._lock:
            seen = int(self._events["id"].max() or 0)
            if self.store.last_id() > seen:
                self._events = pl.concat([self._events, self.store.events(after=seen)])
            return self._events


class PairEventCache:
    """The store's pair events, kept up to date by reading only new ones."""

    def __init__(self, store: LabelStore):
        self.store = store
        self._lock = threading.Lock()
        self._events = store.pair_events()

    def events(self) -> pl.DataFrame:
        with self._lock:
            seen = int(self._events["id"].max() or 0)
            if self.store.last_pair_id() > seen:
                self._events = pl.concat([self._events, self.store.pair_events(after=seen)])
            return self._events
