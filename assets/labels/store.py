"""The label store: an append-only log of labeling events in SQLite (WAL), beside the
catalog, never inside it (DuckDB allows one writer; labelers write all day).

Every event is kept: a label (1-5), a skip, or an undo of an earlier event. Pair judgments
("which of these two is better?") are their own table, `pair_events`, with the same rules.
A label or a choice is acknowledged only once its transaction is on disk (synchronous=FULL),
so one that got its 200 survives the server being killed at any moment.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    post_key TEXT NOT NULL,
    labeler TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('label', 'skip', 'undo')),
    value INTEGER CHECK (value BETWEEN 1 AND 5),
    undoes INTEGER REFERENCES events (id),
    created_at TEXT NOT NULL,
    client TEXT,
    source TEXT NOT NULL DEFAULT 'app',
    request_id TEXT
);
CREATE INDEX IF NOT EXISTS events_by_labeler ON events (labeler, id);
CREATE INDEX IF NOT EXISTS events_by_post ON events (post_key);
CREATE TABLE IF NOT EXISTS pair_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    left_key TEXT NOT NULL,
    right_key TEXT NOT NULL,
    labeler TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('choice', 'skip', 'undo')),
    choice TEXT CHECK (choice IN ('left', 'right', 'tie')),
    undoes INTEGER REFERENCES pair_events (id),
    created_at TEXT NOT NULL,
    client TEXT,
    source TEXT NOT NULL DEFAULT 'app',
    request_id TEXT,
    repeat INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS pair_events_by_labeler ON pair_events (labeler, id);
CREATE UNIQUE INDEX IF NOT EXISTS pair_events_by_request ON pair_events (labeler, request_id)
WHERE request_id IS NOT NULL;
"""
# A client retrying a label whose answer it never got sends the same request id again: the
# store keeps the first and answers with it, so a lost response never doubles a label.
REQUEST_INDEX = """
CREATE UNIQUE INDEX IF NOT EXISTS events_by_request ON events (labeler, request_id)
WHERE request_id IS NOT NULL
"""

EVENTS: dict[str, pl.DataType] = {
    "id": pl.Int64,
    "post_key": pl.String,
    "labeler": pl.String,
    "kind": pl.String,
    "value": pl.Int64,
    "undoes": pl.Int64,
    "created_at": pl.String,
    "client": pl.String,
    "source": pl.String,
}

# Pair judgments: `source` is how the pair was drawn (assets/labels/pairing.py: SOURCES),
# `repeat` whether the labeler had judged this pair (in either order) before.
PAIR_EVENTS: dict[str, pl.DataType] = {
    "id": pl.Int64,
    "left_key": pl.String,
    "right_key": pl.String,
    "labeler": pl.String,
    "kind": pl.String,  # choice, skip or undo
    "choice": pl.String,  # left, right or tie (choices only)
    "undoes": pl.Int64,
    "created_at": pl.String,
    "client": pl.String,
    "source": pl.String,
    "repeat": pl.Boolean,
}
PAIR_CHOICES = ("left", "right", "tie")

LAST_UNDOABLE_PAIR = """
SELECT e.id, e.left_key, e.right_key, e.kind, e.choice FROM pair_events e
WHERE e.labeler = ? AND e.kind IN ('choice', 'skip')
  AND NOT EXISTS (SELECT 1 FROM pair_events u WHERE u.undoes = e.id)
ORDER BY e.id DESC LIMIT 1
"""
# Whether the labeler has a standing judgment of this pair, in either order.
JUDGED_BEFORE = """
SELECT EXISTS (SELECT 1 FROM pair_events e
WHERE e.labeler = ? AND e.kind = 'choice'
  AND ((e.left_key = ? AND e.right_key = ?) OR (e.left_key = ? AND e.right_key = ?))
  AND NOT EXISTS (SELECT 1 FROM pair_events u WHERE u.undoes = e.id))
"""

LAST_UNDOABLE = """
SELECT e.id, e.post_key, e.kind, e.value FROM events e
WHERE e.labeler = ? AND e.kind IN ('label', 'skip')
  AND NOT EXISTS (SELECT 1 FROM events u WHERE u.undoes = e.id)
ORDER BY e.id DESC LIMIT 1
"""


class LabelStoreError(ValueError):
    """A label or an undo the store cannot take, with a message for whoever sent it."""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class LabelStore:
    """One SQLite file; safe to share between the threads of one process, and between
    processes (SQLite serialises writers; readers never block them in WAL mode)."""

    def __init__(self, path: Path, read_only: bool = False):
        self.path = Path(path)
        self._lock = threading.Lock()
        if read_only:
            uri = f"file:{self.path}?mode=ro"
            self._con = sqlite3.connect(uri, uri=True, check_same_thread=False)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._con = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            self._con.execute("PRAGMA journal_mode = WAL")
            self._con.execute("PRAGMA synchronous = FULL")
            self._con.executescript(SCHEMA)
            self._migrate()
        self._con.execute("PRAGMA busy_timeout = 30000")

    def _migrate(self) -> None:
        """Stores made before request ids get the column (nothing else changes)."""
        columns = {row[1] for row in self._con.execute("PRAGMA table_info(events)")}
        if "request_id" not in columns:
            self._con.execute("ALTER TABLE events ADD COLUMN request_id TEXT")
        self._con.execute(REQUEST_INDEX)

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> LabelStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def add(
        self,
        post_key: str,
        labeler: str,
        value: int | str,
        client: str | None = None,
        created_at: str | None = None,
        source: str = "app",
        request_id: str | None = None,
    ) -> int:
        """Record a label (1-5) or a skip ("skip"); returns its id once it is on disk. A
        request id seen before from this labeler returns the first event's id instead."""
        kind, number = _kind(value)
        with self._lock, self._con:
            cursor = self._con.execute(
                "INSERT INTO events (post_key, labeler, kind, value, created_at, client, source,"
                " request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (labeler, request_id) WHERE request_id IS NOT NULL DO NOTHING",
                (post_key, labeler, kind, number, created_at or now(), client, source, request_id),
            )
            if cursor.rowcount == 0:
                return int(
                    self._con.execute(
                        "SELECT id FROM events WHERE labeler = ? AND request_id = ?",
                        (labeler, request_id),
                    ).fetchone()[0]
                )
        return int(cursor.lastrowid)

    def add_many(self, rows: Iterable[tuple[str, str, int, str]], source: str) -> int:
        """(post_key, labeler, value, created_at) rows, in one transaction."""
        with self._lock, self._con:
            cursor = self._con.executemany(
                "INSERT INTO events (post_key, labeler, kind, value, created_at, source)"
                " VALUES (?, ?, 'label', ?, ?, ?)",
                [(k, who, v, at, source) for k, who, v, at in rows],
            )
        return cursor.rowcount

    def undo(self, labeler: str, client: str | None = None) -> dict | None:
        """Undo the labeler's latest label or skip not undone yet; None when there is none."""
        with self._lock, self._con:
            row = self._con.execute(LAST_UNDOABLE, (labeler,)).fetchone()
            if row is None:
                return None
            self._con.execute(
                "INSERT INTO events (post_key, labeler, kind, undoes, created_at, client)"
                " VALUES (?, ?, 'undo', ?, ?, ?)",
                (row[1], labeler, row[0], now(), client),
            )
        return {"id": row[0], "post_key": row[1], "kind": row[2], "value": row[3]}

    def add_pair(
        self,
        left_key: str,
        right_key: str,
        labeler: str,
        choice: str,
        client: str | None = None,
        source: str = "app",
        request_id: str | None = None,
        created_at: str | None = None,
    ) -> int:
        """Record a pair judgment (`left`, `right`, `tie`, or `skip`) as shown; returns its id
        once it is on disk. A request id seen before from this labeler returns the first
        judgment's id. The judgment is a repeat when the labeler's standing choices already
        hold this pair, in either order."""
        if choice not in (*PAIR_CHOICES, "skip"):
            raise LabelStoreError(
                f'choice must be "left", "right", "tie" or "skip": got {choice!r}'
            )
        if left_key == right_key:
            raise LabelStoreError("a pair needs two different posts")
        kind = "skip" if choice == "skip" else "choice"
        with self._lock, self._con:
            if request_id is not None:
                known = self._con.execute(
                    "SELECT id FROM pair_events WHERE labeler = ? AND request_id = ?",
                    (labeler, request_id),
                ).fetchone()
                if known is not None:
                    return int(known[0])
            keys = (left_key, right_key, right_key, left_key)
            repeat = self._con.execute(JUDGED_BEFORE, (labeler, *keys)).fetchone()[0]
            cursor = self._con.execute(
                "INSERT INTO pair_events (left_key, right_key, labeler, kind, choice, created_at,"
                " client, source, request_id, repeat) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    left_key,
                    right_key,
                    labeler,
                    kind,
                    None if kind == "skip" else choice,
                    created_at or now(),
                    client,
                    source,
                    request_id,
                    int(bool(repeat)),
                ),
            )
        return int(cursor.lastrowid)

    def undo_pair(self, labeler: str, client: str | None = None) -> dict | None:
        """Undo the labeler's latest pair choice or skip not undone yet; None when none."""
        with self._lock, self._con:
            row = self._con.execute(LAST_UNDOABLE_PAIR, (labeler,)).fetchone()
            if row is None:
                return None
            self._con.execute(
                "INSERT INTO pair_events (left_key, right_key, labeler, kind, undoes, created_at,"
                " client) VALUES (?, ?, ?, 'undo', ?, ?, ?)",
                (row[1], row[2], labeler, row[0], now(), client),
            )
        keys = ("id", "left_key", "right_key", "kind", "choice")
        return dict(zip(keys, row, strict=True))

    def pair_events(self, after: int = 0) -> pl.DataFrame:
        """Every pair event with an id above `after`, in order (none in a store made before
        pairs, opened read-only)."""
        with self._lock:
            present = self._con.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'pair_events'"
            ).fetchone()
            rows = (
                self._con.execute(
                    f"SELECT {', '.join(PAIR_EVENTS)} FROM pair_events WHERE id > ? ORDER BY id",
                    (after,),
                ).fetchall()
                if present
                else []
            )
        return pl.DataFrame(rows, schema=PAIR_EVENTS, orient="row")

    def last_pair_id(self) -> int:
        with self._lock:
            return int(
                self._con.execute("SELECT coalesce(max(id), 0) FROM pair_events").fetchone()[0]
            )

    def events(self, after: int = 0) -> pl.DataFrame:
        """Every event with an id above `after` (all of them by default), in order."""
        with self._lock:
            rows = self._con.execute(
                "SELECT id, post_key, labeler, kind, value, undoes, created_at, client, source"
                " FROM events WHERE id > ? ORDER BY id",
                (after,),
            ).fetchall()
        return pl.DataFrame(rows, schema=EVENTS, orient="row")

    def last_id(self) -> int:
        with self._lock:
            return int(self._con.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0])


def _kind(value: int | str) -> tuple[str, int | None]:
    if value == "skip":
        return "skip", None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise LabelStoreError(f'value must be an integer from 1 to 5, or "skip": got {value!r}')
    return "label", value


def active_pairs(events: pl.DataFrame) -> pl.DataFrame:
    """Pair choices and skips that no undo cancelled (in order)."""
    undone = events.filter(pl.col("kind") == "undo")["undoes"]
    return events.filter(pl.col("kind").is_in(["choice", "skip"]) & ~pl.col("id").is_in(undone))


def active(events: pl.DataFrame) -> pl.DataFrame:
    """Label and skip events that no undo cancelled (in order)."""
    undone = events.filter(pl.col("kind") == "undo")["undoes"]
    return events.filter(pl.col("kind").is_in(["label", "skip"]) & ~pl.col("id").is_in(undone))
