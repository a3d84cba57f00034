"""Superseded full exports: a newer full export of a site retires the older ones.

A full export (see `Format.full_export`: e621's daily db_export, a Danbooru2021-style dump)
holds the whole site as it was when it was taken, so once a newer one is ingested no stage
needs the older: it is *superseded*. It stays on disk for lineage until
`[ingest] superseded_retention_days` have passed, then `retire` removes its stage tables and
its raw file. Partial files (API pages) are never superseded: their posts keep merging
newest-record-wins (assets/ingest/current.py).

Every posts table raw_posts writes carries a `Stamp` in its parquet footer (key-value
metadata, written with the table itself, so the two never disagree and a reader needs only the
footer): the file's format, whether it is a full export, its snapshot (the newest
`updated_at`, else `created_at`, it holds, as normalize's `cohorts.snapshots` computes) and its
ingestion time.

Superseded is derived from those stamps each time it is asked, never stored, so partitions
ingested at the same time, in any order, agree on it. Per site, the full exports form export
sets: one file, or the shards of one dump (BigQuery-style names that differ only in a 12-digit
shard number before the extension, `posts000000000000.json`, `posts000000000001.json`, ...).
The newest set by snapshot (ties: the later ingestion) is current; every file of every other
set is superseded by it, since the later of the two ingestions (the moment both were there).
A posts table without a stamp (written before stamps existed) counts as partial.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq

from assets.ingest.paths import RawFile, signature, table_files
from orchestration import objectstore
from orchestration.objectstore import Location
from orchestration.storage import Layout

FOOTER_KEY = "scoretag.raw_file"
SHARD = re.compile(r"(?<!\d)\d{12}(?=\.[^\d/]*$)")
TABLES = ("posts", "quarantine", "skipped")
READERS = 16  # footers read at once from an object store


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).astimezone(UTC)


def _text(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


@dataclass(frozen=True)
class Stamp:
    """What decides whether an ingested file is superseded."""

    format: str
    full_export: bool
    snapshot_at: datetime | None  # None: the file holds no post
    ingested_at: datetime
    source_signature: str | None = None  # the raw file's size and mtime when it was read

    def footer(self) -> dict[str, str]:
        """The parquet key-value metadata that carries this stamp."""
        return {
            FOOTER_KEY: json.dumps(
                {
                    "format": self.format,
                    "full_export": self.full_export,
                    "snapshot_at": _text(self.snapshot_at),
                    "ingested_at": _text(self.ingested_at),
                    "source_signature": self.source_signature,
                },
                sort_keys=True,
            )
        }

    @classmethod
    def from_footer(cls, metadata: dict[bytes, bytes] | None) -> Stamp | None:
        """The stamp in a parquet file's key-value metadata; None where there is none (or one
        this version cannot read: such a file counts as partial, never superseded)."""
        value = (metadata or {}).get(FOOTER_KEY.encode())
        if value is None:
            return None
        try:
            fields = json.loads(value)
            return cls(
                format=str(fields["format"]),
                full_export=fields["full_export"] is True,
                snapshot_at=_time(fields["snapshot_at"]),
                ingested_at=_time(fields["ingested_at"]),
                source_signature=fields.get("source_signature"),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


_GONE = object()


def read_stamp(path: Location) -> Stamp | None:
    """The stamp of a posts table, from its footer alone (no row is read)."""
    sources, fs = objectstore.arrow_sources(path)
    return Stamp.from_footer(pq.read_metadata(sources[0], filesystem=fs).metadata)


def _stamp_or_gone(path: Location):
    try:
        return read_stamp(path)
    except FileNotFoundError:  # removed since it was listed
        return _GONE


def export_set(name: str) -> str:
    """The export a full-export file belongs to: its name, the shard number left out."""
    return SHARD.sub("*", name, count=1)


@dataclass(frozen=True)
class Ingested:
    """One raw file's posts table, with its stamp."""

    raw: RawFile
    posts: Location
    stamp: Stamp | None

    @property
    def full_export(self) -> bool:
        return self.stamp is not None and self.stamp.full_export

    @property
    def export(self) -> str:
        """`<site>/<name>`, the shard number of a dump's shard replaced by `*`."""
        return f"{self.raw.site}/{export_set(self.raw.name)}"


@dataclass(frozen=True)
class Superseded:
    file: Ingested
    by: Ingested  # the newest file of the export that supersedes it
    by_export: str  # that export (`<site>/<name>`, `*` for a dump's shard number)
    since: datetime  # the later of the two ingestions

    def row(self) -> dict:
        return {
            "file": self.file.raw.key,
            "superseded_by": self.by_export,
            "since": _text(self.since),
        }


def ingested_files(layout: Layout) -> list[Ingested]:
    """Every raw file with a posts table, stamps read from the footers (in parallel from an
    object store, where each one is a request)."""
    paths = table_files(layout, "posts")
    remote = any(objectstore.is_remote(p) for p in paths)
    if remote and len(paths) > 1:
        with ThreadPoolExecutor(min(READERS, len(paths))) as pool:
            stamps = list(pool.map(_stamp_or_gone, paths))
    else:
        stamps = [_stamp_or_gone(p) for p in paths]
    return [
        Ingested(RawFile(path.parent.name, path.name.removesuffix(".parquet")), path, stamp)
        for path, stamp in zip(paths, stamps, strict=True)
        if stamp is not _GONE
    ]


def _file_rank(file: Ingested) -> tuple:
    stamp = file.stamp
    return (
        stamp.snapshot_at is not None,
        stamp.snapshot_at or stamp.ingested_at,
        stamp.ingested_at,
    )


def _export_rank(files: list[Ingested]) -> tuple:
    snapshots = [f.stamp.snapshot_at for f in files if f.stamp.snapshot_at is not None]
    return (
        bool(snapshots),
        max(snapshots) if snapshots else datetime.min.replace(tzinfo=UTC),
        max(f.stamp.ingested_at for f in files),
    )


def supersede(files: Sequence[Ingested]) -> list[Superseded]:
    """Which of `files` are superseded, and by what: per site, every full export but those of
    the newest export set (by snapshot, then by the later ingestion)."""
    exports: dict[str, dict[str, list[Ingested]]] = defaultdict(lambda: defaultdict(list))
    for file in files:
        if file.full_export:
            exports[file.raw.site][file.export].append(file)
    superseded = []
    for by_export in exports.values():
        ranked = sorted(by_export, key=lambda e: (_export_rank(by_export[e]), e))
        newest = by_export[ranked[-1]]
        by = max(newest, key=lambda f: (_file_rank(f), f.raw.name))
        began = min(f.stamp.ingested_at for f in newest)
        for export in ranked[:-1]:
            for file in by_export[export]:
                since = max(began, file.stamp.ingested_at)
                superseded.append(Superseded(file, by, ranked[-1], since))
    return sorted(superseded, key=lambda s: s.file.raw.key)


def superseded_files(layout: Layout) -> list[Superseded]:
    """Every superseded raw file still on disk, with the export that superseded it and since
    when."""
    return supersede(ingested_files(layout))


def current_files(layout: Layout) -> list[Location]:
    """The posts tables of every raw file not superseded (what the stages read)."""
    files = ingested_files(layout)
    gone = {s.file.raw.key for s in supersede(files)}
    return [f.posts for f in files if f.raw.key not in gone]


def due(superseded: Sequence[Superseded], days: int, now: datetime) -> list[Superseded]:
    """Those superseded at least `days` days before `now` (0: all of them)."""
    return [s for s in superseded if now - s.since >= timedelta(days=days)]


def remove(layout: Layout, file: Ingested) -> None:
    """Delete a superseded file: its raw file in the inbox (unless it changed since it was
    read: new content waits there for its own ingestion), then its skipped, quarantine and
    posts tables. Posts last: until they are gone the file is still listed as superseded, so
    an interrupted removal is finished by the next one."""
    raw = file.raw
    inbox = raw.path(layout)
    expected = file.stamp.source_signature if file.stamp else None
    if inbox.is_file() and (expected is None or signature(inbox) == expected):
        inbox.unlink(missing_ok=True)
    for table in reversed(TABLES):
        staged, output = raw.staging(layout, table), raw.output(layout, table)
        if staged != output:
            staged.unlink(missing_ok=True)
        objectstore.remove(output)


def retire(
    layout: Layout,
    superseded: Sequence[Superseded],
    days: int,
    *,
    now: datetime | None = None,
    keep: Collection[str] = (),
    busy: Callable[[str], bool] = lambda key: False,
) -> list[Superseded]:
    """Remove the superseded files whose superseding is `days` days old or more; returns
    them. Files whose partition key is in `keep`, or for which `busy(key)` says a run is
    using them, wait for a later retention."""
    now = now or datetime.now(UTC)
    removed = []
    for entry in due(superseded, days, now):
        key = entry.file.raw.key
        if key in keep or busy(key):
            continue
        remove(layout, entry.file)
        removed.append(entry)
    return removed
