"""The image index: every image the sources hold, persisted under `data/images/index/` and
refreshed from what changed since the last scan.

- `folders.parquet`: each source folder's mtime, sub-folders and tar shards (see folders.py);
- `tars.parquet`, `listings.parquet`: each tar shard's and index file's size and mtime;
- `parts/<source>/`: the entries (ENTRY) in parquet parts, with a map of which part holds
  each folder's (tar shard's, index file's) entries, so a rescan rewrites only the parts of
  what changed and puts what is new in parts of its own (see parts.py);
- `sha512.parquet`: sha512s of md5-named images, hashed once for posts known only by their
  sha512 (Philomena's) that no file is named after.

A scan lists again only folders whose mtime changed, reads again only tar shards whose size
or mtime changed and index files likewise; what disappeared drops out.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tarfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain, repeat
from pathlib import Path

import polars as pl

from assets.images.folders import FOLDERS, walk
from assets.images.listed import listed_entries
from assets.images.names import IMAGE_EXTS, ext_expr, keys_expr, stem_expr
from assets.images.parts import Parts
from assets.images.sources import Source
from assets.images.tars import MEMBER, digests, read_tar
from orchestration.atomic import read_parquet_or_empty, write_parquet

ENTRY: dict[str, pl.DataType] = {
    "source": pl.String,
    "kind": pl.String,  # file | tar | index
    "dir": pl.String,  # the folder listed, the tar shard read, or the index file
    "path": pl.String,  # absolute: the file, or the tar shard holding the image
    "member": pl.String,  # the name inside the tar shard
    "offset": pl.Int64,  # -1: the whole file
    "length": pl.Int64,  # -1: the whole file
    "file_ext": pl.String,
    "md5": pl.String,
    "sha512": pl.String,
    "post_key": pl.String,
    "image_key": pl.String,  # given by an index file
    "size": pl.Int64,  # of a file hashed at scan time (to keep its hashes while unchanged)
    "mtime_ns": pl.Int64,
}
STAMP: dict[str, pl.DataType] = {
    "source": pl.String,
    "path": pl.String,
    "size": pl.Int64,
    "mtime_ns": pl.Int64,
}
FORMAT = "2"  # the layout of the files below; an index in another is rebuilt
Progress = Callable[[str, int, int | None], None]  # phase, done, total


@dataclass
class ScanReport:
    """What one scan looked at and re-read."""

    seconds: float = 0.0
    folders: int = 0
    folders_listed: int = 0
    tars: int = 0
    tars_read: int = 0
    listings_read: int = 0
    files_hashed: int = 0
    parts_written: int = 0
    changed: list[str] = field(default_factory=list)  # folders, tars, index files re-read

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "changed"}


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema=ENTRY)


def _file_entries(source: Source, listed: dict[str, list[str]], before: pl.DataFrame) -> tuple:
    """Entries of the image files of re-listed folders; under `auto`, files whose name gives
    no key are hashed, unless `before` has their hashes for the same size and mtime."""
    dirs = list(chain.from_iterable(repeat(d, len(ns)) for d, ns in listed.items()))
    names = list(chain.from_iterable(listed.values()))
    frame = pl.DataFrame({"dir": dirs, "name": names}, schema={"dir": pl.String, "name": pl.String})
    stem = stem_expr(pl.col("name"))
    frame = (
        frame.with_columns(file_ext=ext_expr(pl.col("name")))
        .filter(pl.col("file_ext").is_in(IMAGE_EXTS))
        .with_columns(*keys_expr(stem, source.layout, source.site))
        .with_columns(path=pl.col("dir") + "/" + pl.col("name"))
    )
    keyed = pl.any_horizontal(pl.col("md5", "sha512", "post_key").is_not_null())
    unkeyed = frame.filter(~keyed)
    frame = frame.filter(keyed)
    hashed, read = _hash_files(unkeyed, before) if source.layout == "auto" else (unkeyed.clear(), 0)
    rows = pl.concat([frame, hashed], how="diagonal_relaxed").with_columns(
        source=pl.lit(source.label),
        kind=pl.lit("file"),
        member=pl.lit(None, pl.String),
        offset=pl.lit(-1, pl.Int64),
        length=pl.lit(-1, pl.Int64),
        image_key=pl.lit(None, pl.String),
    )
    for column in ("size", "mtime_ns"):
        if column not in rows.columns:
            rows = rows.with_columns(pl.lit(None, pl.Int64).alias(column))
    return rows.select(list(ENTRY)).cast(ENTRY), read


def _hash_files(files: pl.DataFrame, before: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """md5 and sha512 of files no name keys: from `before` where size and mtime are the
    same, else read once."""
    stats = []
    for path in files["path"]:
        try:
            st = os.stat(path)
            stats.append((path, st.st_size, st.st_mtime_ns))
        except OSError:
            continue
    frame = pl.DataFrame(
        stats, schema={k: STAMP[k] for k in ("path", "size", "mtime_ns")}, orient="row"
    )
    frame = frame.join(files.select("path", "dir", "file_ext"), on="path")
    known = before.filter(pl.col("size").is_not_null()).select(
        "path", "size", "mtime_ns", "md5", "sha512"
    )
    frame = frame.join(known, on=["path", "size", "mtime_ns"], how="left")
    todo = frame.filter(pl.col("md5").is_null())
    hashes = []
    for path, size in todo.select("path", "size").iter_rows():
        with open(path, "rb") as f:
            hashes.append(digests(f, 0, size))
    done = todo.with_columns(
        md5=pl.Series([h[0] for h in hashes], dtype=pl.String),
        sha512=pl.Series([h[1] for h in hashes], dtype=pl.String),
    )
    hashed = pl.concat([frame.filter(pl.col("md5").is_not_null()), done])
    return hashed.with_columns(post_key=pl.lit(None, pl.String)), todo.height


def _tar_entries(source: Source, tar: str) -> pl.DataFrame:
    try:
        rows = read_tar(Path(tar), source.layout, source.site)
    except (OSError, EOFError, tarfile.TarError) as e:
        raise OSError(f"cannot read the tar shard {tar}: {e}") from e
    members = pl.DataFrame(rows, schema=MEMBER, orient="row")
    return members.with_columns(
        source=pl.lit(source.label),
        kind=pl.lit("tar"),
        dir=pl.lit(tar),
        path=pl.lit(tar),
        image_key=pl.lit(None, pl.String),
        size=pl.lit(None, pl.Int64),
        mtime_ns=pl.lit(None, pl.Int64),
    ).select(list(ENTRY))


def _stat(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


@contextmanager
def _locked(index_dir: Path) -> Iterator[None]:
    """One scan at a time per index (the asset and `scoretag images scan` may overlap)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _source_dir(index_dir: Path, source: Source) -> Path:
    return index_dir / "parts" / hashlib.sha1(source.key.encode()).hexdigest()[:12]


def _scan_folders(
    source: Source,
    parts: Path,
    folders: pl.DataFrame,
    tars: pl.DataFrame,
    skip: set[str],
    report: ScanReport,
    progress: Progress,
) -> tuple[list[tuple], list[tuple]]:
    """Rescan one folder source; returns its FOLDERS rows and tar STAMP rows now."""
    known = {
        d: (m, s, t)
        for d, m, s, t in folders.filter(pl.col("source") == source.key)
        .select("dir", "mtime_ns", "subdirs", "tars")
        .iter_rows()
    }
    if source.path.endswith(".tar") and os.path.isfile(source.path):
        walked_folders, listed, tar_paths = [], {}, [source.path]
    else:
        walked = walk(source.key, source.path, known, skip)
        walked_folders, listed, tar_paths = walked.folders, walked.listed, walked.tars
    progress("folders", len(listed), len(walked_folders))
    stamps_before = {
        p: (size, mtime)
        for p, size, mtime in tars.filter(pl.col("source") == source.key)
        .select("path", "size", "mtime_ns")
        .iter_rows()
    }
    now = {p: st for p in tar_paths if (st := _stat(p)) is not None}
    changed = sorted(p for p, st in now.items() if stamps_before.get(p) != st)
    gone = set(known) - {row[1] for row in walked_folders}
    units = set(listed) | gone | set(changed) | (set(stamps_before) - set(now))

    def build(before: pl.DataFrame) -> pl.DataFrame:
        frames, hashed = [], 0
        if listed:
            entries, hashed = _file_entries(source, listed, before)
            frames.append(entries)
        for done, tar in enumerate(changed, 1):
            frames.append(_tar_entries(source, tar))
            progress("tars", done, len(changed))
        report.files_hashed += hashed
        return pl.concat(frames) if frames else _empty()

    report.parts_written += Parts(parts, ENTRY).rewrite(units, build)
    report.folders += len(walked_folders)
    report.folders_listed += len(listed)
    report.tars += len(now)
    report.tars_read += len(changed)
    report.changed += sorted(set(listed) | set(changed))
    stamp_rows = [(source.key, p, *st) for p, st in now.items()]
    return walked_folders, stamp_rows


def _scan_listing(
    source: Source, parts: Path, listings: pl.DataFrame, report: ScanReport
) -> list[tuple]:
    """Re-read an index file when its size or mtime changed; returns its STAMP row."""
    st = _stat(source.index)
    if st is None:
        raise FileNotFoundError(f"image index not found: {source.index}")
    before = listings.filter(
        (pl.col("source") == source.key) & (pl.col("path") == source.index)
    ).select("size", "mtime_ns")
    if before.height == 0 or tuple(before.row(0)) != st:

        def build(_: pl.DataFrame) -> pl.DataFrame:
            rows = listed_entries(Path(source.index), Path(source.path))
            return rows.with_columns(
                source=pl.lit(source.label),
                kind=pl.lit("index"),
                dir=pl.lit(source.index),
                size=pl.lit(None, pl.Int64),
                mtime_ns=pl.lit(None, pl.Int64),
            ).select(list(ENTRY))

        report.parts_written += Parts(parts, ENTRY).rewrite({source.index}, build)
        report.listings_read += 1
        report.changed.append(source.index)
    return [(source.key, source.index, *st)]


def _upgrade(index_dir: Path) -> None:
    """An index written in another format is removed, to be rebuilt by this scan."""
    stamp = index_dir / "FORMAT"
    if stamp.is_file() and stamp.read_text().strip() == FORMAT:
        return
    for path in index_dir.iterdir():
        if path.name != ".lock":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    stamp.write_text(FORMAT + "\n")


def _nested(source: Source, sources: list[Source]) -> set[str]:
    """Roots of other folder sources inside this one: theirs to scan, not this one's."""
    return {
        s.path
        for s in sources
        if s.layout != "index" and s.path != source.path and s.path.startswith(source.path + "/")
    }


def refresh(index_dir: Path, sources: list[Source], progress: Progress | None = None) -> ScanReport:
    """Bring the index under `index_dir` up to date with `sources`, reading only what
    changed since the last scan."""
    progress = progress or (lambda phase, done, total: None)
    report = ScanReport()
    started = time.perf_counter()
    with _locked(index_dir):
        _upgrade(index_dir)
        folders = read_parquet_or_empty(index_dir / "folders.parquet", FOLDERS)
        tars = read_parquet_or_empty(index_dir / "tars.parquet", STAMP)
        listings = read_parquet_or_empty(index_dir / "listings.parquet", STAMP)
        folder_rows, tar_rows, listing_rows = [], [], []
        for source in sources:
            parts = _source_dir(index_dir, source)
            parts.mkdir(parents=True, exist_ok=True)
            if source.layout == "index":
                listing_rows += _scan_listing(source, parts, listings, report)
            else:
                skip = _nested(source, sources)
                found = _scan_folders(source, parts, folders, tars, skip, report, progress)
                folder_rows += found[0]
                tar_rows += found[1]
        current = {_source_dir(index_dir, s).name for s in sources}
        for old in (index_dir / "parts").iterdir():
            if old.name not in current:
                shutil.rmtree(old)  # a source no longer configured
        write_parquet(
            pl.DataFrame(folder_rows, schema=FOLDERS, orient="row"), index_dir / "folders.parquet"
        )
        write_parquet(
            pl.DataFrame(tar_rows, schema=STAMP, orient="row"), index_dir / "tars.parquet"
        )
        write_parquet(
            pl.DataFrame(listing_rows, schema=STAMP, orient="row"), index_dir / "listings.parquet"
        )
    report.seconds = time.perf_counter() - started
    return report


def exists(index_dir: Path) -> bool:
    """Whether a scan in this format has been made (else the first use makes one)."""
    stamp = index_dir / "FORMAT"
    current = stamp.is_file() and stamp.read_text().strip() == FORMAT
    return current and (index_dir / "folders.parquet").is_file()


def load(index_dir: Path, sources: list[Source]) -> pl.DataFrame:
    """Every entry of the index, the sources' order first (then loose files before tar
    members), with the sha512s hashed for posts known only by theirs."""
    frames = []
    for rank, source in enumerate(sources):
        files = Parts(_source_dir(index_dir, source), ENTRY).files()
        if files:
            frames.append(pl.read_parquet(files).with_columns(rank=pl.lit(rank, pl.Int32)))
    entries = pl.concat(frames) if frames else _empty().with_columns(rank=pl.lit(0, pl.Int32))
    kind = pl.col("kind").replace_strict({"file": 0, "tar": 1, "index": 2}, return_dtype=pl.Int8)
    entries = entries.sort(pl.col("rank"), kind, "path", "offset").drop("rank")
    hashed = index_dir / "sha512.parquet"
    if hashed.is_file():
        known = pl.read_parquet(hashed).rename({"sha512": "hashed_sha512"})
        entries = entries.join(known, on=["path", "offset"], how="left", maintain_order="left")
        entries = entries.with_columns(sha512=pl.coalesce("sha512", "hashed_sha512")).drop(
            "hashed_sha512"
        )
    return entries
