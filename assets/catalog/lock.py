"""Opening the catalog when another process has it open.

DuckDB lets one process write a database file, and while it does no other process may even
read it; a process reading it keeps writers out. Two runs at once (a scheduled one and a manual
one, or a run and `scoretag query`) therefore find the file locked. Dagster's `duckdb` pool
keeps its own runs apart; this is what every other case gets: the second waits for the lock,
with backoff, up to a timeout, then fails naming the file and the process that holds it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

# The first retry comes soon (a short query lets go quickly); later ones at most this far apart.
FIRST_DELAY_S = 0.05
MAX_DELAY_S = 2.0
_HOLDER = re.compile(r"\(PID (\d+)\)")


class CatalogBusy(OSError):
    """Another process held the catalog's lock for longer than the caller would wait."""


def is_lock_conflict(error: duckdb.Error) -> bool:
    """DuckDB's refusal because another process holds the file (not a missing or bad file)."""
    return isinstance(error, duckdb.IOException) and "Could not set lock" in str(error)


def holder(path: Path, error: duckdb.Error, read_only: bool) -> str:
    """Who has the catalog, in the user's terms (DuckDB names the process holding the lock)."""
    match = _HOLDER.search(str(error))
    process = f"process {match.group(1)}" if match else "another process"
    if read_only:
        return f"the catalog {path} is being written by {process} (another pipeline run)"
    return (
        f"the catalog {path} is open in {process}: another run is writing it, "
        "or a query or an export is reading it"
    )


def memory_config(memory_mb: int | None) -> dict[str, str]:
    """DuckDB's connection config for a memory limit of `memory_mb` (none: DuckDB's default)."""
    return {"memory_limit": f"{int(memory_mb)}MB"} if memory_mb else {}


def connect(
    path: Path,
    *,
    read_only: bool = False,
    config: dict[str, Any] | None = None,
    timeout_s: float = 0.0,
    on_wait: Callable[[str], None] | None = None,
) -> duckdb.DuckDBPyConnection:
    """A connection to the DuckDB file `path`, waiting up to `timeout_s` while another process
    holds its lock. `on_wait` hears, once, that it is waiting and why. Raises CatalogBusy when
    the lock is still held at the deadline; any other DuckDB error as it is."""
    deadline = time.monotonic() + timeout_s
    delay = FIRST_DELAY_S
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only, config=config or {})
        except duckdb.Error as error:
            if not is_lock_conflict(error):
                raise
            who = holder(path, error, read_only)
        left = deadline - time.monotonic()
        if left <= 0:
            raise CatalogBusy(
                f"{who}; waited {timeout_s:g} s for it. Only one process may write the catalog "
                "at a time: try again once that one has finished, or wait longer with "
                "[catalog] lock_timeout_s"
            )
        if on_wait is not None and delay == FIRST_DELAY_S:
            on_wait(f"{who}; waiting up to {timeout_s:g} s for it")
        time.sleep(min(delay, left))
        delay = min(delay * 2, MAX_DELAY_S)


def connect_existing(
    path: Path | str,
    *,
    read_only: bool = False,
    config: dict[str, Any] | None = None,
    timeout_s: float = 0.0,
    on_wait: Callable[[str], None] | None = None,
) -> duckdb.DuckDBPyConnection:
    """connect() to a catalog that the pipeline must have built already; a missing file or
    one DuckDB cannot open (corrupt, or open for writing in this very process) is an error
    that says so, as CatalogBusy does for a lock held too long."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no catalog at {path}: run the pipeline first (`scoretag run`) to build it"
        )
    try:
        return connect(
            path, read_only=read_only, config=config, timeout_s=timeout_s, on_wait=on_wait
        )
    except duckdb.Error as e:
        how = " read-only" if read_only else ""
        raise OSError(f"cannot open the catalog {path}{how}: {e}") from None
