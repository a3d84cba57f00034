"""Files that appear whole or not at all: written under a hidden temporary name in the same
folder, then renamed into place (a rename is atomic on one filesystem).

Every stage writes through these, so a run killed at any moment leaves no partial file where
a reader, a sensor or a rerun would see it.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq


def temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # somebody else's process
    return True


def remove_orphans(folder: Path) -> list[Path]:
    """Delete the temporary files that killed writers left in `folder` (a process that no
    longer exists wrote them); returns what was removed."""
    removed = []
    for tmp in folder.glob(".*.tmp") if folder.is_dir() else []:
        pid = tmp.name.rsplit(".", 2)[-2]
        if pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path`, on error it is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: Path, data: bytes) -> Path:
    """Write atomically, and not at all when the file already holds these bytes."""
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return path
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def write_parquet(frame: pl.DataFrame, path: Path) -> Path:
    with atomic_path(path) as tmp:
        frame.write_parquet(tmp, compression="lz4", statistics=False)
    return path


def read_parquet_or_empty(path: Path, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """The parquet file at `path`, or an empty frame of `schema` where none was written yet."""
    return pl.read_parquet(path) if path.is_file() else pl.DataFrame(schema=schema)


class ParquetSink:
    """Append polars batches to one parquet file that becomes visible only on `commit()`.

    Batches go to Arrow without a copy (string views kept) and are encoded on a writer
    thread (pyarrow releases the GIL), so writing one batch overlaps reading the next.
    """

    def __init__(self, path: Path, schema: dict[str, pl.DataType], compression: str = "lz4"):
        self.path = path
        self.rows = 0
        self._schema = schema
        self._arrow_schema = self._arrow(pl.DataFrame(schema=schema)).schema
        self._context = atomic_path(path)
        self._tmp = self._context.__enter__()
        self._writer = pq.ParquetWriter(self._tmp, self._arrow_schema, compression=compression)
        self._pending: queue.Queue = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="parquet-sink", daemon=True)
        self._thread.start()

    @staticmethod
    def _arrow(frame: pl.DataFrame) -> pa.Table:
        return frame.to_arrow(compat_level=pl.CompatLevel.newest())

    def _drain(self) -> None:
        while (table := self._pending.get()) is not None:
            if self._error is None:
                try:
                    self._writer.write_table(table)
                except BaseException as error:  # raised in the caller's thread
                    self._error = error

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, frame: pl.DataFrame) -> None:
        self._raise()
        if frame.height:
            table = self._arrow(frame.select(list(self._schema))).cast(self._arrow_schema)
            self._pending.put(table)
            self.rows += frame.height

    def _finish(self) -> None:
        self._pending.put(None)
        self._thread.join()
        self._writer.close()

    def commit(self) -> Path:
        self._finish()
        self._raise()
        self._context.__exit__(None, None, None)
        return self.path

    def abort(self) -> None:
        self._finish()
        self._context.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self) -> ParquetSink:
        return self

    def __exit__(self, kind, error, trace) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()
