"""The registry of file formats the ingest stage reads, and auto-detection.

A format is one way one site writes its metadata (Danbooru's API pages, its Danbooru2021
dump, e621's db_export...). Each knows how to recognise its files from their first bytes and
how to read them into raw batches; `coerce` then does the typing common to all.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

SNIFF_BYTES = 64 * 1024


@dataclass(frozen=True)
class ReadOptions:
    batch_rows: int = 100_000
    danbooru_rating_scheme: str = "auto"  # auto, pre2022 or current


@dataclass
class RawBatch:
    """Records as a site wrote them, under the common column names (types not yet checked).

    `raw` holds one row per record with `record` (its number in the file, from 1), `rating`
    (already mapped to g/s/q/e, null if unknown) and `rating_raw`. `rejected` holds records
    that could not even be read (broken JSON, a CSV row with the wrong field count):
    record, reason, raw. `skipped` holds records that are not posts (Philomena's stubs for
    hidden and duplicate images): record, post_id, reason.
    """

    raw: pl.DataFrame
    rejected: pl.DataFrame = field(default_factory=lambda: rejected_frame([]))
    skipped: pl.DataFrame = field(default_factory=lambda: skipped_frame([]))
    renumber: pl.Series | None = None
    """Set by an adapter that numbered its records before it knew which ones its parser
    would reject (a big CSV read in one pass): for each rejected record, how many records were
    kept before it. Records the file yielded so far are renumbered with it; records yielded
    after it already carry their true numbers."""


@dataclass(frozen=True)
class Format:
    name: str
    site: str
    description: str
    sniff: Callable[[str], bool]  # the file's first bytes, decoded
    read: Callable[[Path, ReadOptions], Iterator[RawBatch]]
    full_export: bool = False
    """A file of this format holds the whole site as it was when it was taken (e621's daily
    db_export, a Danbooru2021-style dump), so a newer one supersedes it (see
    assets/ingest/supersede.py). API pages and other partial files never are superseded:
    their posts merge newest-record-wins."""


def rejected_frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"record": pl.Int64, "reason": pl.String, "raw": pl.String})


def skipped_frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"record": pl.Int64, "post_id": pl.Int64, "reason": pl.String})


def open_text(path: Path):
    """A text stream over a plain or gzip-compressed file."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return path.open("r", encoding="utf-8", newline="")


def open_bytes(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def head(path: Path) -> str:
    """The file's first bytes as text, for sniffing (bytes that are not UTF-8 are replaced:
    the reader, not the sniffer, decides what to do with them)."""
    try:
        with open_bytes(path) as f:
            data = f.read(SNIFF_BYTES)
    except (OSError, EOFError) as e:  # a corrupt .gz
        raise UnknownFormat(f"{path} cannot be read: {e}") from None
    return data.decode("utf-8", errors="replace").lstrip("\ufeff")


class UnknownFormat(ValueError):
    """The file is not one any adapter recognises."""


def _registry() -> list[Format]:
    # Imported here: the adapters import this module for Format and RawBatch.
    from assets.ingest import danbooru, e621, gelbooru, philomena

    return [*danbooru.FORMATS, *e621.FORMATS, *philomena.FORMATS, *gelbooru.FORMATS]


def formats() -> list[Format]:
    return _registry()


def detect(path: Path, site: str = "auto") -> Format:
    """The format of `path`, among all formats or only those of `site`."""
    candidates = [f for f in formats() if site in ("auto", f.site)]
    if not candidates:
        sites = sorted({f.site for f in formats()})
        raise UnknownFormat(f"unknown site {site!r}: choose auto or one of {', '.join(sites)}")
    text = head(path)
    if not text.strip():
        raise UnknownFormat(f"{path} is empty")
    for candidate in candidates:
        if candidate.sniff(text):
            return candidate
    known = ", ".join(f.name for f in candidates)
    raise UnknownFormat(
        f"{path} is not in a format scoretag reads (tried {known})"
        + ("" if site != "auto" else "; pass --site if you know the site")
    )
