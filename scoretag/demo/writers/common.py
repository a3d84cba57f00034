"""What every site writer needs: deterministic files, timestamps, stable tag ids."""

from __future__ import annotations

import gzip
import io
import json
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from orchestration.atomic import write_bytes


@dataclass
class Written:
    """One raw file the demo wrote, and what a reader should find in it."""

    path: Path
    site: str
    kind: str  # danbooru_api, danbooru_dump, e621_api, e621_csv, ...
    fmt: str  # json, jsonl, csv.gz, xml
    records: int  # post records (stubs and broken records not counted)
    skipped: list[dict] = field(default_factory=list)  # {"record": n, "reason": ...}


def page_name(prefix: str, page: int, ext: str) -> str:
    return f"{prefix}-p{page:03d}.{ext}"


def write_json(path: Path, payload) -> Path:
    return write_bytes(path, json.dumps(payload, ensure_ascii=False).encode())


def gzip_bytes(data: bytes) -> bytes:
    """gzip with no timestamp or file name in the header, so the bytes depend on data alone."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as f:
        f.write(data)
    return buffer.getvalue()


def tag_id(name: str) -> int:
    """A stable per-name id, like a site's tag table would assign."""
    return zlib.crc32(name.encode()) % 2_000_000 + 1


def us_offset(moment: datetime, standard_hours: int) -> timezone:
    """US local time with daylight saving approximated as April to October."""
    dst = 4 <= moment.month <= 10
    return timezone(timedelta(hours=standard_hours + (1 if dst else 0)))


def iso_local(moment: datetime, standard_hours: int = -5) -> str:
    """`2020-07-26T10:31:20.176-04:00`: Rails-style local time with milliseconds."""
    local = moment.astimezone(us_offset(moment, standard_hours))
    return local.isoformat(timespec="milliseconds")


def utc_text(moment: datetime, suffix: str = "") -> str:
    """`2008-06-10 03:08:07.34205`: PostgreSQL's text form of a UTC timestamp."""
    text = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f").rstrip("0").rstrip(".")
    return text + suffix


def ctime_local(moment: datetime, standard_hours: int = -6) -> str:
    """`Wed Mar 15 09:46:20 -0500 2023`: Gelbooru's timestamp form."""
    local = moment.astimezone(us_offset(moment, standard_hours))
    return local.strftime("%a %b %d %H:%M:%S %z %Y")
