"""Object storage through fsspec, for the data that outgrows one machine's disk.

A location is a local `Path`, or for a URL with a scheme (`s3://bucket/prefix`, `gs://...`,
`memory://...` in tests) a `UPath` over that scheme's fsspec filesystem; both offer the same
path API (`/`, `glob`, `is_file`, `read_bytes`, `name`, `relative_to`). Only writing and parquet
I/O differ, and go through here: local files through orchestration.atomic (a hidden temporary
file, then a rename), exactly as before; objects in one PUT of the whole file, since an object
store shows an object only once its upload has completed. No temporary key and no rename: a
"rename" there is a copy and a delete, neither atomic nor free.

Credentials and endpoints come from the filesystem's own environment (AWS_* or an IAM role for
s3fs, GOOGLE_APPLICATION_CREDENTIALS or workload identity for gcsfs) or from fsspec's
`FSSPEC_<PROTOCOL>_<ARGUMENT>` variables, e.g. `FSSPEC_S3_ENDPOINT_URL` for MinIO.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from upath import UPath

from orchestration import atomic

if TYPE_CHECKING:
    import duckdb
    from fsspec import AbstractFileSystem

Location = Path | UPath
LOCAL_PROTOCOLS = ("", "file", "local")


def location(root: str | Location) -> Location:
    """`root` as a path: a local Path unless it is a URL of another filesystem."""
    if isinstance(root, Path):
        return root
    path = root if isinstance(root, UPath) else UPath(root)
    if path.protocol in LOCAL_PROTOCOLS:
        return Path(path.path)
    return path


def is_remote(path: Location) -> bool:
    return not isinstance(path, Path)


def url(path: Location) -> str:
    """What DuckDB and people read: `s3://bucket/key`, or the local path."""
    return str(path)


def filesystem(path: Location) -> AbstractFileSystem | None:
    """The fsspec filesystem of a remote location; None for a local one (read natively)."""
    return path.fs if is_remote(path) else None


def arrow_sources(
    paths: Location | Sequence[Location],
) -> tuple[list, AbstractFileSystem | None]:
    """`paths` (one or several) as pyarrow reads them: themselves locally (pyarrow's own
    reader, memory maps and all), else their keys and the filesystem that holds them."""
    paths = [paths] if isinstance(paths, Path | UPath) else list(paths)
    remote = [p for p in paths if is_remote(p)]
    if not remote:
        return list(paths), None
    if len(remote) < len(paths) or len({p.protocol for p in remote}) > 1:
        raise ValueError("cannot read local and remote files, or two filesystems, together")
    return [p.path for p in remote], remote[0].fs


def write_bytes(path: Location, data: bytes) -> Location:
    """Write whole, and not at all when the file already holds these bytes."""
    if not is_remote(path):
        return atomic.write_bytes(path, data)
    if path.is_file() and path.read_bytes() == data:
        return path
    path.fs.pipe_file(path.path, data)
    return path


def upload(source: Path, path: Location) -> Location:
    """Copy a local file to `path`, whole or not at all (an object appears once its upload,
    multipart or not, has completed)."""
    if not is_remote(path):
        with atomic.atomic_path(path) as tmp:
            shutil.copyfile(source, tmp)
        return path
    path.fs.put_file(str(source), path.path)
    return path


def remove(path: Location) -> None:
    path.unlink(missing_ok=True)


def write_table(table: pa.Table, path: Location, **options: Any) -> Location:
    """Write an Arrow table as one parquet file, whole or not at all (`options` go to
    pq.write_table)."""
    if not is_remote(path):
        with atomic.atomic_path(path) as tmp:
            pq.write_table(table, tmp, **options)
        return path
    buffer = io.BytesIO()
    pq.write_table(table, buffer, **options)  # a failure here leaves no object at all
    path.fs.pipe_file(path.path, buffer.getvalue())
    return path


def write_parquet(frame: pl.DataFrame, path: Location) -> Location:
    """A polars frame as parquet, with atomic.write_parquet's settings."""
    if not is_remote(path):
        return atomic.write_parquet(frame, path)
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="lz4", statistics=False)
    path.fs.pipe_file(path.path, buffer.getvalue())
    return path


def read_parquet(
    paths: Location | Sequence[Location], columns: list[str] | None = None
) -> pl.DataFrame:
    """One or several parquet files as one frame (polars locally, pyarrow over fsspec else)."""
    sources, fs = arrow_sources(paths)
    if fs is None:
        return pl.read_parquet(sources if len(sources) > 1 else sources[0], columns=columns)
    return pl.from_arrow(pq.read_table(sources, columns=columns, filesystem=fs))


def parquet_rows(paths: Sequence[Location]) -> int:
    """The rows of these parquet files, from their footers."""
    sources, fs = arrow_sources(paths)
    return sum(pq.ParquetFile(s, filesystem=fs).metadata.num_rows for s in sources)


def scan_parquet(paths: Location | Sequence[Location]) -> pl.LazyFrame:
    """One or several parquet files as one lazy frame (polars locally, a pyarrow dataset over
    fsspec else)."""
    sources, fs = arrow_sources(paths)
    if fs is None:
        return pl.scan_parquet([str(s) for s in sources])
    import pyarrow.dataset as ds

    return pl.scan_pyarrow_dataset(ds.dataset(sources, filesystem=fs, format="parquet"))


def remove_orphans(folder: Location) -> list[Location]:
    """The temporary files killed writers left behind; an object store has none (see above)."""
    return [] if is_remote(folder) else atomic.remove_orphans(folder)


def register(con: duckdb.DuckDBPyConnection, path: Location) -> None:
    """Let DuckDB read files under `path` (its fsspec filesystem registered on `con`)."""
    fs = filesystem(path)
    if fs is None:
        return
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else fs.protocol
    if protocols[0] not in con.list_filesystems():  # DuckDB names it by its first protocol
        con.register_filesystem(fs)


def signature(path: Location) -> str:
    """Cheap identity of a file's content: its size and when it was written (an object
    store's own stamp: modification time, or the ETag where there is none)."""
    if not is_remote(path):
        stat = path.stat()
        return f"{stat.st_size}-{stat.st_mtime_ns}"
    info = path.fs.info(path.path)
    stamp = next(
        (info[k] for k in ("mtime", "LastModified", "updated", "created", "ETag") if info.get(k)),
        "",
    )
    return f"{info.get('size')}-{stamp}"
