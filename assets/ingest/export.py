"""`scoretag ingest --out`: raw files to one parquet table, with no Dagster involved, so a
user can inspect a dump before (or instead of) running the pipeline on it."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from assets.ingest.formats import ReadOptions, UnknownFormat
from assets.ingest.reader import FileReport, QuarantineExceeded, ingest_file, keep_newest
from assets.ingest.schema import QUARANTINE, SKIPPED
from orchestration.atomic import write_parquet


@dataclass
class ExportResult:
    reports: list[FileReport] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # file -> why nothing was loaded
    outputs: dict[str, Path] = field(default_factory=dict)


def side_path(out: Path, table: str) -> Path:
    """`posts.parquet` → `posts.quarantine.parquet`."""
    return out.with_name(f"{out.stem}.{table}{out.suffix or '.parquet'}")


def _concat(paths: list[Path], schema: dict, out: Path) -> Path:
    frames = [pl.read_parquet(p) for p in paths if p.is_file()]
    return write_parquet(pl.concat(frames) if frames else pl.DataFrame(schema=schema), out)


def export(
    paths: Sequence[Path],
    out: Path,
    *,
    site: str = "auto",
    options: ReadOptions | None = None,
    threshold: float = 0.01,
    on_file: Callable[[Path], None] = lambda p: None,
) -> ExportResult:
    """Ingest every file; write the newest record of each post to `out`, and the quarantined
    and skipped records beside it. A file that cannot be read is reported, not fatal."""
    result = ExportResult()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".scoretag-ingest-") as tmp:
        parts = {t: [] for t in ("posts", "quarantine", "skipped")}
        for i, path in enumerate(paths):
            on_file(path)
            outs = {t: Path(tmp) / f"{i}.{t}.parquet" for t in parts}
            try:
                result.reports.append(
                    ingest_file(
                        path,
                        *outs.values(),
                        site=site,
                        options=options,
                        threshold=threshold,
                        source_file=str(path),
                    )
                )
                parts["posts"].append(outs["posts"])
            except (QuarantineExceeded, UnknownFormat, FileNotFoundError) as e:
                result.errors[str(path)] = str(e)
            parts["quarantine"].append(outs["quarantine"])
            parts["skipped"].append(outs["skipped"])
        if parts["posts"]:
            keep_newest(parts["posts"], out)
            result.outputs["posts"] = out
        for table, schema in (("quarantine", QUARANTINE), ("skipped", SKIPPED)):
            result.outputs[table] = _concat(parts[table], schema, side_path(out, table))
    return result
