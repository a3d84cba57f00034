"""Ingest one raw file: detect its format, read it in batches, type every record, and write
the posts, the quarantined records and the skipped ones to parquet.

Memory is bounded by the batch size ([ingest] batch_rows), not by the file: batches are typed
and streamed to the parquet writers one at a time; nothing is kept per post. Duplicate
posts are ruled out on the fly while the ids only grow (as the big dumps write them); else
DuckDB counts them, and rewrites the file keeping the newest, within DUCKDB_MEMORY, spilling
to disk beside the output. A file whose quarantined share passes the threshold is refused as
a whole: its posts never become visible, its quarantine rows do (so the user can see why).

The posts table's footer carries the file's stamp (format, full export or not, snapshot,
ingestion time: see assets/ingest/supersede.py), written with the table and kept when the
table is rewritten (renumbered, deduplicated).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow.parquet as pq

from assets.ingest.coerce import coerce
from assets.ingest.formats import Format, RawBatch, ReadOptions, detect
from assets.ingest.paths import signature
from assets.ingest.schema import POSTS, QUARANTINE, SKIPPED, conform
from assets.ingest.supersede import Stamp
from assets.ingest.urls import with_urls
from orchestration.atomic import ParquetSink, atomic_path


class QuarantineExceeded(ValueError):
    """Too large a share of a file could not be read: nothing of it is loaded."""


@dataclass(frozen=True)
class Batch:
    posts: pl.DataFrame
    quarantine: pl.DataFrame
    skipped: pl.DataFrame
    renumber: pl.Series | None = None  # see RawBatch.renumber


@dataclass
class FileReport:
    """What ingesting one file found."""

    source_file: str
    site: str
    format: str
    posts: int = 0
    quarantined: int = 0
    skipped: int = 0
    duplicates: int = 0  # records of a post the same file holds again, newer
    reasons: Counter = field(default_factory=Counter)
    skip_reasons: Counter = field(default_factory=Counter)
    stamp: Stamp | None = None  # what the posts table's footer says (see supersede.py)

    @property
    def records(self) -> int:
        return self.posts + self.duplicates + self.quarantined

    @property
    def quarantined_share(self) -> float:
        return self.quarantined / self.records if self.records else 0.0

    def top_reasons(self, n: int = 3) -> str:
        return "; ".join(f"{reason} ({count})" for reason, count in self.reasons.most_common(n))


def _stamp(frame: pl.DataFrame, site: str, source_file: str, ingested_at: datetime):
    return frame.with_columns(
        site=pl.lit(site),
        source_file=pl.lit(source_file),
        ingested_at=pl.lit(ingested_at, dtype=POSTS["ingested_at"]),
    )


def type_batch(raw: RawBatch, site: str, source_file: str, ingested_at: datetime) -> Batch:
    """One raw batch in the common schema, with its quarantined and skipped records."""
    good, bad = coerce(raw.raw) if raw.raw.height else (pl.DataFrame(), raw.rejected.clear())
    if good.height:
        good = with_urls(good, site)
    quarantine = pl.concat([raw.rejected, bad.select(raw.rejected.columns)])
    return Batch(
        posts=conform(_stamp(good, site, source_file, ingested_at), POSTS),
        quarantine=conform(_stamp(quarantine, site, source_file, ingested_at), QUARANTINE),
        skipped=conform(_stamp(raw.skipped, site, source_file, ingested_at), SKIPPED),
        renumber=raw.renumber,
    )


def read_file(
    path: Path, fmt: Format, options: ReadOptions, source_file: str, ingested_at: datetime
) -> Iterator[Batch]:
    for raw in fmt.read(path, options):
        yield type_batch(raw, fmt.site, source_file, ingested_at)


class StampedSink(ParquetSink):
    """A ParquetSink whose footer gets `key_value` metadata, added once every batch is
    written (the writer thread has finished) and before the file is closed."""

    key_value: dict[str, str] | None = None

    def _finish(self) -> None:
        self._pending.put(None)
        self._thread.join()
        if self.key_value and self._error is None:
            self._writer.add_key_value_metadata(self.key_value)
        self._writer.close()


def footer(path: Path) -> dict[str, str]:
    """The scoretag key-value metadata of a parquet file (not Arrow's own schema entry)."""
    metadata = pq.read_metadata(path).metadata or {}
    return {k.decode(): v.decode() for k, v in metadata.items() if not k.startswith(b"ARROW:")}


# What DuckDB may hold while it counts or drops duplicates; past it, it spills to disk. With
# its default (80% of the machine's memory) what it held grew with the file.
DUCKDB_MEMORY = "512MB"


@contextlib.contextmanager
def _bounded(folder: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection held to DUCKDB_MEMORY, spilling to a scratch folder in `folder`
    (beside the output: the disk that has room for it)."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".duckdb-spill-") as spill:
        config = {
            "memory_limit": DUCKDB_MEMORY,
            "temp_directory": spill,
            "preserve_insertion_order": False,
        }
        with duckdb.connect(config=config) as con:
            yield con


def keep_newest(sources: list[Path], out: Path, key_value: dict[str, str] | None = None) -> None:
    """Write one row per (site, post) of `sources` to `out`: the newest record, by
    updated_at, then ingestion time, then position in its file. DuckDB does it within
    DUCKDB_MEMORY, spilling to disk rather than holding every row in memory. `key_value`
    goes into the footer."""
    files = ", ".join(_quoted(p) for p in sources)
    options = ""
    if key_value:
        pairs = ", ".join(f"{_quoted(k)}: {_quoted(v)}" for k, v in key_value.items())
        options = f", KV_METADATA {{{pairs}}}"
    with atomic_path(out) as tmp, _bounded(out.parent) as con:
        con.execute(
            f"COPY (SELECT * FROM read_parquet([{files}]) QUALIFY row_number() OVER ("
            "PARTITION BY site, post_id ORDER BY updated_at DESC NULLS LAST, "
            "ingested_at DESC, record DESC) = 1) "
            f"TO {_quoted(tmp)} (FORMAT parquet, COMPRESSION zstd{options})"
        )


def _quoted(path: Path | str) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def renumber(path: Path, kept_before: pl.Series, first_rows: int | None = None) -> None:
    """Give the records of `path` (its first `first_rows`, or all) their place in the file
    now that the rejected ones are known. Rewritten one row group at a time (the writer wrote
    one per batch), only the record column changed, so a big file is never held in memory
    (polars' sink_parquet of this held the whole file). The footer's metadata is kept."""
    key_value = footer(path)
    with pq.ParquetFile(path) as source, atomic_path(path) as tmp:
        schema = source.schema_arrow.remove_metadata()
        column = schema.get_field_index("record")
        rows = 0
        with pq.ParquetWriter(tmp, schema, compression="lz4") as writer:
            for group in range(source.num_row_groups):
                table = source.read_row_group(group).replace_schema_metadata(None)
                record = pl.from_arrow(table.column(column)).alias("record")
                moved = record + kept_before.search_sorted(record, side="left").cast(pl.Int64)
                if first_rows is not None:
                    ahead = pl.Series(np.arange(rows, rows + len(record)) < first_rows)
                    moved = pl.select(pl.when(ahead).then(moved).otherwise(record)).to_series()
                rows += len(record)
                moved = moved.to_arrow().cast(schema.field(column).type)
                writer.write_table(table.set_column(column, schema.field(column), moved))
            if key_value:
                writer.add_key_value_metadata(key_value)


class IdOrder:
    """Whether the post ids written so far may repeat one, known without keeping them: ids
    that only grow, batch after batch (as e621's export and Danbooru's dumps are written),
    cannot. Holds one id."""

    def __init__(self) -> None:
        self.last: int | None = None
        self.growing = True

    def add(self, ids: pl.Series) -> None:
        if not self.growing or ids.is_empty():
            return
        steps = ids.diff().drop_nulls()
        first = ids[0]
        self.growing = bool((steps > 0).all()) and (self.last is None or first > self.last)
        self.last = ids[-1]


def _duplicates(path: Path) -> int:
    """Records of `path` whose post another record of it holds too (DuckDB groups the ids
    within DUCKDB_MEMORY)."""
    with _bounded(path.parent) as con:
        return con.execute(
            "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n "
            f"FROM read_parquet({_quoted(path)}) GROUP BY post_id HAVING n > 1)"
        ).fetchone()[0]


def _dedupe(path: Path, report: FileReport, order: IdOrder) -> None:
    """Keep one row per post when a file repeats one: ruled out by the ids' order as they
    were written, else counted on the ids alone before any rewrite."""
    if order.growing:
        return
    duplicates = _duplicates(path)
    if duplicates:
        report.duplicates, report.posts = duplicates, report.posts - duplicates
        keep_newest([path], path, footer(path))


def _newest(frame: pl.DataFrame) -> datetime | None:
    """The newest timestamp a batch of posts holds (as cohorts.snapshots reads a file)."""
    if not frame.height:
        return None
    return frame.select(pl.coalesce("updated_at", "created_at").max()).item()


def ingest_file(
    path: Path,
    posts_out: Path,
    quarantine_out: Path,
    skipped_out: Path,
    *,
    site: str = "auto",
    options: ReadOptions | None = None,
    threshold: float = 0.01,
    source_file: str | None = None,
    ingested_at: datetime | None = None,
) -> FileReport:
    """Read one raw file into three parquet files; raise QuarantineExceeded past `threshold`."""
    options = options or ReadOptions()
    fmt = detect(path, site)
    report = FileReport(source_file or path.name, fmt.site, fmt.name)
    stamp = ingested_at or datetime.now(UTC)
    read_signature = signature(path)
    sinks = [
        StampedSink(posts_out, POSTS),
        ParquetSink(quarantine_out, QUARANTINE),
        ParquetSink(skipped_out, SKIPPED),
    ]
    posts, quarantine, skipped = sinks
    kept_before, quarantined_before, snapshot = None, 0, None
    order = IdOrder()
    try:
        for batch in read_file(path, fmt, options, report.source_file, stamp):
            if batch.renumber is not None:
                kept_before, quarantined_before = batch.renumber, quarantine.rows
            newest = _newest(batch.posts)
            if newest is not None and (snapshot is None or newest > snapshot):
                snapshot = newest
            order.add(batch.posts["post_id"])
            posts.write(batch.posts)
            quarantine.write(batch.quarantine)
            skipped.write(batch.skipped)
            report.reasons.update(batch.quarantine["reason"].to_list())
            report.skip_reasons.update(batch.skipped["reason"].to_list())
    except BaseException:
        for sink in sinks:
            sink.abort()
        raise
    report.posts, report.quarantined, report.skipped = posts.rows, quarantine.rows, skipped.rows
    quarantine.commit()  # visible even when the file is refused: they say why
    skipped.commit()
    if kept_before is not None:
        renumber(quarantine_out, kept_before, quarantined_before)
    if report.quarantined_share > threshold:
        posts.abort()
        raise QuarantineExceeded(
            f"{path}: {report.quarantined} of {report.records} records "
            f"({report.quarantined_share:.1%}) could not be read, more than the "
            f"{threshold:.1%} allowed; nothing from this file was loaded. "
            f"Top reasons: {report.top_reasons()}"
        )
    report.stamp = Stamp(fmt.name, fmt.full_export, snapshot, stamp, read_signature)
    posts.key_value = report.stamp.footer()
    posts.commit()
    if kept_before is not None:
        renumber(posts_out, kept_before)
    _dedupe(posts_out, report, order)
    return report
