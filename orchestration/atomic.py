"""Files that appear whole or not at all: written under a hidden temporary name in the same
folder, then renamed into place (a rename is atomic on one filesystem).

Every stage writes through these, so a run killed at any moment leaves no partial file where
a reader, a sensor or a rerun would see it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq


def temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


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
        frame.write_parquet(tmp, statistics=False)
    return path


class ParquetSink:
    """Append polars batches to one parquet file that becomes visible only on `commit()`."""

    def __init__(self, path: Path, schema: dict[str, pl.DataType], compression: str = "zstd"):
        self.path = path
        self.rows = 0
        self._arrow_schema = pl.DataFrame(schema=schema).to_arrow().schema
        self._schema = schema
        self._context = atomic_path(path)
        self._tmp = self._context.__enter__()
        self._writer = pq.ParquetWriter(self._tmp, self._arrow_schema, compression=compression)

    def write(self, frame: pl.DataFrame) -> None:
        if frame.height:
            table = frame.select(list(self._schema)).to_arrow().cast(self._arrow_schema)
            self._writer.write_table(table)
            self.rows += frame.height

    def commit(self) -> Path:
        self._writer.close()
        self._context.__exit__(None, None, None)
        return self.path

    def abort(self) -> None:
        self._writer.close()
        self._context.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self) -> ParquetSink:
        return self

    def __exit__(self, kind, error, trace) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()


def empty_table(schema: dict[str, pl.DataType]) -> pa.Table:
    return pl.DataFrame(schema=schema).to_arrow()
