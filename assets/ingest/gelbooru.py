"""Gelbooru: the JSON API (`{"@attributes": {...}, "post": [...]}`) and the legacy XML API
(`<posts count=.. offset=..><post id=.. md5=.. .../></posts>`).

Gelbooru has no votes, no favourite counts and no tag categories: those columns stay null.
The legacy XML predates Gelbooru's move to Danbooru's four ratings: its `s` (safe) is
today's general (g). `change` (the last update) is Unix seconds.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import polars as pl

from assets.ingest import jsondoc
from assets.ingest.formats import Format, RawBatch, ReadOptions, UnknownFormat, open_bytes

SITE = "gelbooru"
# The JSON API's words, and the legacy XML's letters (whose "s" meant safe).
RATINGS = {
    "general": "g",
    "sensitive": "s",
    "questionable": "q",
    "explicit": "e",
    "s": "g",
    "q": "q",
    "e": "e",
}
XML_PAGE = re.compile(r"<posts\s[^>]*\bcount=")


class MalformedXML(UnknownFormat):
    """The XML breaks off or goes wrong at some point: the file is refused as a whole rather
    than loaded up to the break, since how much is lost after it cannot be known. An
    UnknownFormat, because a file that is not well-formed is not one scoretag can read, and
    callers already turn that into a failure that retrying will not fix."""


def _extension(post: dict) -> str | None:
    name = post.get("image") or urlsplit(str(post.get("file_url") or "")).path
    stem, dot, ext = str(name).rpartition(".")
    return ext.lower() if dot and stem and "/" not in ext else None


def _status_is(post: dict, status: str) -> bool | None:
    return None if post.get("status") is None else post["status"] == status


def _row(post: dict, unescape: bool) -> dict:
    """One post, JSON or XML. The JSON API writes tags and sources HTML-escaped (`&gt;_&lt;`
    for the tag `>_<`), hence `unescape`; XML attributes are already decoded by the parser."""
    scalar = jsondoc.scalar
    tags, source = post.get("tags"), scalar(post.get("source"))
    if unescape and isinstance(tags, str):
        tags = html.unescape(tags)
    if unescape and isinstance(source, str):
        source = html.unescape(source)
    parent = scalar(post.get("parent_id"))
    return {
        "post_id": scalar(post.get("id")),
        "md5": scalar(post.get("md5")),
        "created_at": scalar(post.get("created_at")),
        "updated_at": scalar(post.get("change")),
        "rating_raw": scalar(post.get("rating")),
        "score": scalar(post.get("score")),
        "width": scalar(post.get("width")),
        "height": scalar(post.get("height")),
        "file_ext": _extension(post),
        # Gelbooru writes "" where a post has no sample; urls.py reads that as none.
        "file_url": scalar(post.get("file_url")),
        "sample_url": scalar(post.get("sample_url")),
        "preview_url": scalar(post.get("preview_url")),
        "url_directory": scalar(post.get("directory")),
        "url_image": scalar(post.get("image")),
        "source": source,
        # 0 (JSON) or an empty attribute (XML) means the post has no parent.
        "parent_id": None if parent in (0, "0", "") else parent,
        "is_deleted": _status_is(post, "deleted"),
        "is_pending": _status_is(post, "pending"),
        "tags": jsondoc.tag_list(tags, "tags"),
    }


def epoch_text(value: pl.Expr) -> pl.Expr:
    """Unix seconds as ISO text, which coerce reads; anything else is left as it was, so that
    coerce rejects it with the value in its reason."""
    text = value.cast(pl.String).str.strip_chars()
    seconds = text.cast(pl.Int64, strict=False)
    iso = pl.from_epoch(seconds, "s").dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return pl.when(seconds.is_not_null()).then(iso).otherwise(text)


def finish(raw: pl.DataFrame) -> pl.DataFrame:
    """Map ratings and timestamps that need the whole column (vectorised)."""
    if raw.height == 0:
        return raw
    return raw.with_columns(
        rating=pl.col("rating_raw").cast(pl.String).replace_strict(RATINGS, default=None),
        updated_at=epoch_text(pl.col("updated_at")),
    )


# --- JSON API --------------------------------------------------------------------------------


def _posts(doc: object) -> list | None:
    """The page's posts: a list, one object, or none at all on an empty page."""
    if not isinstance(doc, dict):
        return None
    posts = doc.get("post", [])
    if isinstance(posts, dict):
        return [posts]
    return posts if isinstance(posts, list) else None


def read_json(path: Path, options: ReadOptions) -> Iterator[RawBatch]:
    batch = jsondoc.read_page(
        path,
        _posts,
        'a Gelbooru page (no "post" list or object)',
        lambda post: _row(post, unescape=True),
    )
    batch.raw = finish(batch.raw)
    yield batch


def sniff_json(text: str) -> bool:
    return text.lstrip().startswith("{") and '"@attributes"' in text


# --- legacy XML ------------------------------------------------------------------------------


def _fields(post: ET.Element) -> dict:
    # Legacy posts carry attributes; newer XML pages write the same fields as child elements.
    return dict(post.attrib) or {child.tag: child.text for child in post}


def _xml_batch(rows: list[dict]) -> RawBatch:
    raw = pl.DataFrame(rows, strict=False, infer_schema_length=None)
    return RawBatch(raw=finish(raw))


def _xml_posts(path: Path) -> Iterator[dict]:
    """Each post as a row, its element cleared once read so that memory stays flat."""
    number = 0
    with open_bytes(path) as f:  # the parser honours the XML's declared encoding
        try:
            events = ET.iterparse(f, events=("start", "end"))
            _, root = next(events)
            for event, element in events:
                if event == "end" and element.tag == "post":
                    number += 1
                    raw = ET.tostring(element, encoding="unicode").strip()
                    yield {**_row(_fields(element), unescape=False), "record": number, "raw": raw}
                    root.clear()
        except ET.ParseError as e:
            line, column = e.position
            problem = str(e).split(": line ")[0]
            raise MalformedXML(
                f"{path} is not well-formed XML at line {line}, column {column + 1} "
                f"(after post {number}): {problem}; nothing from this file was loaded"
            ) from e


def read_xml(path: Path, options: ReadOptions) -> Iterator[RawBatch]:
    rows: list[dict] = []
    for row in _xml_posts(path):
        rows.append(row)
        if len(rows) == options.batch_rows:
            yield _xml_batch(rows)
            rows = []
    if rows:
        yield _xml_batch(rows)


def sniff_xml(text: str) -> bool:
    return text.lstrip().startswith("<") and XML_PAGE.search(text) is not None


FORMATS = (
    Format(
        "gelbooru_json",
        SITE,
        'Gelbooru JSON API: {"@attributes": {...}, "post": [...]}',
        sniff_json,
        read_json,
    ),
    Format(
        "gelbooru_xml",
        SITE,
        "Gelbooru's legacy XML API: <posts><post .../></posts>",
        sniff_xml,
        read_xml,
    ),
)
