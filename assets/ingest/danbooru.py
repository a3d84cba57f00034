"""Danbooru: `/posts.json` (an array of posts, or one post) and Danbooru2021-style metadata
dumps (JSON lines; numbers as strings, `tags` as {name, category} objects, `favs` as a list of
user ids, the Unix epoch for a missing timestamp).

Ratings: Danbooru split its old "safe" into general (g) and sensitive (s) in 2022. A file
taken before then uses `s` for safe, which is today's `g`. A file is read with the old scheme
when it holds no `g` rating and its newest timestamp is before SCHEME_CHANGE (or when asked).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from assets.ingest import jsondoc
from assets.ingest.coerce import parse_timestamp
from assets.ingest.formats import Format, RawBatch, ReadOptions, open_bytes, rejected_frame

SITE = "danbooru"
SCHEME_CHANGE = datetime(2022, 6, 1, tzinfo=UTC)
RATINGS = {
    "current": {"g": "g", "s": "s", "q": "q", "e": "e"},
    "pre2022": {"s": "g", "q": "q", "e": "e"},
}
CATEGORIES = {
    "0": None,
    "1": "artist_tags",
    "3": "copyright_tags",
    "4": "character_tags",
    "5": "meta_tags",
}
TAG_STRINGS = {
    "tag_string_artist": "artist_tags",
    "tag_string_character": "character_tags",
    "tag_string_copyright": "copyright_tags",
    "tag_string_meta": "meta_tags",
}


def rating_scheme(raw: pl.DataFrame, asked: str) -> str:
    """`current` or `pre2022` for this file (see the module's docstring)."""
    if asked != "auto":
        return asked
    if raw.height == 0 or (raw["rating_raw"].cast(pl.String) == "g").any():
        return "current"
    stamps = raw.select(
        pl.coalesce(
            parse_timestamp(pl.col("updated_at")), parse_timestamp(pl.col("created_at"))
        ).max()
    ).item()
    return "pre2022" if stamps is not None and stamps < SCHEME_CHANGE else "current"


def map_ratings(raw: pl.DataFrame, scheme: str) -> pl.DataFrame:
    mapping = RATINGS[scheme]
    return raw.with_columns(
        rating=pl.col("rating_raw").cast(pl.String).replace_strict(mapping, default=None)
    )


# --- /posts.json -----------------------------------------------------------------------------


def _api_row(post: dict) -> dict:
    scalar, tags = jsondoc.scalar, jsondoc.tag_list
    row = {
        "post_id": scalar(post.get("id")),
        "md5": scalar(post.get("md5")),
        "created_at": scalar(post.get("created_at")),
        "updated_at": scalar(post.get("updated_at")),
        "rating_raw": scalar(post.get("rating")),
        "score": scalar(post.get("score")),
        "up_votes": scalar(post.get("up_score")),
        "down_votes": scalar(post.get("down_score")),
        "favorites": scalar(post.get("fav_count")),
        "width": scalar(post.get("image_width")),
        "height": scalar(post.get("image_height")),
        "file_ext": scalar(post.get("file_ext")),
        "file_size": scalar(post.get("file_size")),
        # Absent for posts whose file Danbooru withholds (banned ones): see urls.py.
        "file_url": scalar(post.get("file_url")),
        "sample_url": scalar(post.get("large_file_url")),
        "preview_url": scalar(post.get("preview_file_url")),
        "source": scalar(post.get("source")),
        "parent_id": scalar(post.get("parent_id")),
        "is_deleted": scalar(post.get("is_deleted")),
        "is_pending": scalar(post.get("is_pending")),
        "tags": tags(post.get("tag_string"), "tag_string"),
    }
    for field, column in TAG_STRINGS.items():
        row[column] = tags(post.get(field), field)
    return row


def _records(doc: object) -> list | None:
    if isinstance(doc, list):
        return doc
    return [doc] if isinstance(doc, dict) else None


def read_api(path: Path, options: ReadOptions) -> Iterator[RawBatch]:
    batch = jsondoc.read_page(path, _records, "a Danbooru post or list of posts", _api_row)
    if batch.raw.height:
        batch.raw = map_ratings(batch.raw, rating_scheme(batch.raw, options.danbooru_rating_scheme))
    yield batch


def sniff_api(text: str) -> bool:
    return text.lstrip()[:1] in "[{" and '"tag_string"' in text


# --- Danbooru2021 dumps ----------------------------------------------------------------------

DUMP_SCHEMA = {
    name: pl.String
    for name in (
        "id",
        "md5",
        "created_at",
        "updated_at",
        "rating",
        "score",
        "up_score",
        "down_score",
        "image_width",
        "image_height",
        "file_ext",
        "file_size",
        "source",
        "parent_id",
        "is_deleted",
        "is_pending",
    )
} | {
    "tags": pl.List(pl.Struct({"name": pl.String, "category": pl.String})),
    "favs": pl.List(pl.String),
}


def _category(tags: pl.Expr, code: str) -> pl.Expr:
    return tags.list.eval(
        pl.element().filter(pl.element().struct.field("category") == code).struct.field("name")
    )


def _dump_columns(frame: pl.DataFrame) -> pl.DataFrame:
    tags = pl.col("tags")
    return frame.select(
        "record",
        "raw",
        post_id="id",
        md5="md5",
        created_at="created_at",
        updated_at="updated_at",
        rating_raw="rating",
        score="score",
        up_votes="up_score",
        down_votes="down_score",
        favorites=pl.col("favs").list.len(),
        width="image_width",
        height="image_height",
        file_ext="file_ext",
        file_size="file_size",
        source="source",
        # Danbooru2021 writes "0" for "no parent".
        parent_id=pl.when(pl.col("parent_id") != "0").then("parent_id"),
        is_deleted="is_deleted",
        is_pending="is_pending",
        tags=tags.list.eval(pl.element().struct.field("name")),
        **{column: _category(tags, code) for code, column in CATEGORIES.items() if column},
    )


def _decoded(lines: list[bytes], first: int) -> tuple[list[tuple[int, str]], list[dict]]:
    """Non-blank lines with their numbers; lines that are not UTF-8 are rejected."""
    numbered, rejected = [], []
    for number, line in enumerate(lines, first):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            rejected.append(
                {
                    "record": number,
                    "reason": "not UTF-8 text",
                    "raw": line.decode("utf-8", errors="replace"),
                }
            )
            continue
        if text.strip():
            numbered.append((number, text))
    return numbered, rejected


def _why(line: str, error: Exception) -> str:
    """Why polars could not read this one line."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        return f"malformed JSON: {e.msg}"
    if not isinstance(record, dict):
        return "record is not a JSON object"
    detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return f"a field has an unexpected type ({detail})"


def _read_valid(numbered: list[tuple[int, str]]) -> tuple[list[pl.DataFrame], list[dict]]:
    """Read the lines; where polars refuses a block, halve it until the bad lines are
    isolated, so a chunk with one broken line costs a few reads, not one per line."""
    try:
        return [_read_ndjson(numbered)], []
    except (pl.exceptions.ComputeError, pl.exceptions.SchemaError) as e:
        if len(numbered) == 1:
            number, line = numbered[0]
            return [], [{"record": number, "reason": _why(line, e), "raw": line}]
    middle = len(numbered) // 2
    first, first_bad = _read_valid(numbered[:middle])
    second, second_bad = _read_valid(numbered[middle:])
    return first + second, first_bad + second_bad


def _parse_lines(lines: list[bytes], first: int) -> tuple[pl.DataFrame, list[dict]]:
    """Lines [first, first + len) of the file as a frame; broken lines as rejected records."""
    numbered, rejected = _decoded(lines, first)
    frames, bad = _read_valid(numbered) if numbered else ([], [])
    frame = pl.concat(frames) if frames else _read_ndjson([])
    return frame, sorted(rejected + bad, key=lambda r: r["record"])


def _read_ndjson(numbered: list[tuple[int, str]]) -> pl.DataFrame:
    if not numbered:
        return pl.DataFrame(schema={**DUMP_SCHEMA, "record": pl.Int64, "raw": pl.String})
    numbers, lines = zip(*numbered, strict=True)
    data = io.BytesIO("\n".join(lines).encode())
    frame = pl.read_ndjson(data, schema=DUMP_SCHEMA)
    return frame.with_columns(
        record=pl.Series(numbers, dtype=pl.Int64), raw=pl.Series(lines, dtype=pl.String)
    )


def _chunks(path: Path, size: int) -> Iterator[tuple[int, list[bytes]]]:
    with open_bytes(path) as f:
        first, lines = 1, []
        for line in f:
            lines.append(line.rstrip(b"\r\n"))
            if len(lines) == size:
                yield first, lines
                first, lines = first + size, []
        if lines:
            yield first, lines


def read_dump(path: Path, options: ReadOptions) -> Iterator[RawBatch]:
    scheme = None
    for first, lines in _chunks(path, options.batch_rows):
        frame, rejected = _parse_lines(lines, first)
        raw = _dump_columns(frame)
        scheme = scheme or rating_scheme(raw, options.danbooru_rating_scheme)
        yield RawBatch(raw=map_ratings(raw, scheme), rejected=rejected_frame(rejected))


def sniff_dump(text: str) -> bool:
    first = text.lstrip().split("\n", 1)[0]
    return first.startswith("{") and '"favs"' in first and '"tag_string"' not in first


FORMATS = (
    Format(
        "danbooru_api",
        SITE,
        "Danbooru /posts.json: an array of posts, or one post",
        sniff_api,
        read_api,
    ),
    Format(
        "danbooru_dump",
        SITE,
        "Danbooru2021-style metadata dump (JSON lines)",
        sniff_dump,
        read_dump,
        full_export=True,
    ),
)
