"""Reading JSON documents (API pages): a page holds at most a few hundred records, so each
record is mapped in Python and the whole page becomes one frame for `coerce`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

import polars as pl

from assets.ingest.formats import RawBatch, open_text, rejected_frame, skipped_frame

Mapper = Callable[[dict], dict]


class UnreadablePage(ValueError):
    """A page that is not JSON, or not the JSON its site writes."""


def load(path: Path) -> object:
    try:
        with open_text(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise UnreadablePage(f"not JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None
    except UnicodeDecodeError:
        raise UnreadablePage("not UTF-8 text") from None


def unreadable_page(path: Path, reason: str) -> RawBatch:
    """The whole page as one rejected record (no record number: it is not one of the page's
    records). The reader's threshold then refuses the file and names the reason."""
    with path.open("rb") as f:
        start = f.read(200).decode("utf-8", errors="replace")
    return RawBatch(
        raw=pl.DataFrame(),
        rejected=rejected_frame([{"record": None, "reason": reason, "raw": start}]),
    )


def read_page(
    path: Path,
    extract: Callable[[object], list | None],
    expected: str,
    mapper: Mapper,
    skip: Callable[[dict], str | None] = lambda r: None,
) -> RawBatch:
    """A JSON page's records, mapped; or the page as one rejected record when it is not JSON
    or `extract` finds no records in it (it returns None), the reason naming `expected`."""
    try:
        records = extract(load(path))
        if records is None:
            raise UnreadablePage(f"not {expected}")
    except UnreadablePage as e:
        return unreadable_page(path, str(e))
    return frame(records, mapper, skip)


def scalar(value: object) -> object:
    """A scalar field as the file had it; a nested value becomes its JSON text, so that
    conversion fails loudly on it instead of a frame silently dropping it."""
    return json.dumps(value) if isinstance(value, dict | list) else value


def tag_list(value: object, name: str) -> list[str] | None:
    """Tags written as a space-separated string or as a list of strings."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        return [t.strip() for t in value if t.strip()]
    raise ValueError(f"{name} is neither a tag string nor a list of tags")


def frame(
    records: Iterable[object], mapper: Mapper, skip: Callable[[dict], str | None] = lambda r: None
) -> RawBatch:
    """Map every record; unreadable ones are rejected, stubs skipped, each with its reason."""
    rows, rejected, skipped = [], [], []
    for number, record in enumerate(records, 1):
        text = json.dumps(record, ensure_ascii=False)
        if not isinstance(record, dict):
            rejected.append(
                {"record": number, "reason": "record is not a JSON object", "raw": text}
            )
            continue
        reason = skip(record)
        if reason:
            skipped.append(
                {"record": number, "post_id": _int_or_none(record.get("id")), "reason": reason}
            )
            continue
        try:
            rows.append({**mapper(record), "record": number, "raw": text})
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            rejected.append({"record": number, "reason": f"unreadable record: {e}", "raw": text})
    raw = pl.DataFrame(rows, strict=False, infer_schema_length=None) if rows else pl.DataFrame()
    return RawBatch(raw=raw, rejected=rejected_frame(rejected), skipped=skipped_frame(skipped))


def _int_or_none(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
