"""e621: `/posts.json` (a page `{"posts": [...]}` or one `{"post": {...}}`) and the daily
db_export `posts-YYYY-MM-DD.csv[.gz]`.

e621's `s` rating means safe, which is our general (g). The export has no tag categories:
they come from the `tags-*.csv[.gz]` table e621 publishes beside it (the newest one in the
same folder); without one, the category lists stay null.

The export (5M rows, 2 GB) is parsed by DuckDB and streamed in Arrow batches of
`batch_rows` to polars, on a worker thread one batch ahead, so the next batch is read while
the reader writes this one; memory is bounded by the batch size and DUCKDB_MEMORY, whatever
the file's size. DuckDB rejects rows it cannot parse and names them once the scan is done;
the reader then renumbers the records it wrote before them, so that every row keeps its data
row number (from 1) as its record number.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from queue import Full, Queue

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

from assets.ingest import jsondoc
from assets.ingest.formats import Format, RawBatch, ReadOptions, head, rejected_frame

SITE = "e621"
RATINGS = {"s": "g", "q": "q", "e": "e"}
API_CATEGORIES = {
    "artist": "artist_tags",
    "character": "character_tags",
    "copyright": "copyright_tags",
    "species": "species_tags",
    "meta": "meta_tags",
}
# Category ids of e621's tags table (0 general, 6 invalid and 8 lore have no list of their own).
TABLE_CATEGORIES = {
    1: "artist_tags",
    3: "copyright_tags",
    4: "character_tags",
    5: "species_tags",
    7: "meta_tags",
}


def map_ratings(raw: pl.DataFrame) -> pl.DataFrame:
    return raw.with_columns(
        rating=pl.col("rating_raw").cast(pl.String).replace_strict(RATINGS, default=None)
    )


# --- /posts.json -----------------------------------------------------------------------------


def _object(post: dict, key: str) -> dict:
    value = post.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{key} is not an object")
    return value


def _sources(value: object) -> str | None:
    """e621 lists a post's sources; the common schema has them one per line, as its export."""
    if isinstance(value, list):
        return "\n".join(jsondoc.tag_list(value, "sources") or ()) or None
    return jsondoc.scalar(value) or None


def _api_row(post: dict) -> dict:
    scalar = jsondoc.scalar
    file, score, flags = _object(post, "file"), _object(post, "score"), _object(post, "flags")
    sample, preview = _object(post, "sample"), _object(post, "preview")
    tags = {
        category: jsondoc.tag_list(value, f"tags.{category}")
        for category, value in _object(post, "tags").items()
    }
    return {
        "post_id": scalar(post.get("id")),
        "md5": scalar(file.get("md5")),
        "created_at": scalar(post.get("created_at")),
        "updated_at": scalar(post.get("updated_at")),
        "rating_raw": scalar(post.get("rating")),
        "score": scalar(score.get("total")),
        "up_votes": scalar(score.get("up")),
        "down_votes": scalar(score.get("down")),
        "favorites": scalar(post.get("fav_count")),
        "width": scalar(file.get("width")),
        "height": scalar(file.get("height")),
        "file_ext": scalar(file.get("ext")),
        "file_size": scalar(file.get("size")),
        # Null for deleted posts and files e621 withholds from the caller: see urls.py.
        "file_url": scalar(file.get("url")),
        "sample_url": scalar(sample.get("url")),
        "preview_url": scalar(preview.get("url")),
        "source": _sources(post.get("sources")),
        "parent_id": scalar(_object(post, "relationships").get("parent_id")),
        "is_deleted": scalar(flags.get("deleted")),
        "is_pending": scalar(flags.get("pending")),
        "tags": [tag for listed in tags.values() for tag in listed or ()],
        **{column: tags.get(category) for category, column in API_CATEGORIES.items()},
    }


def _api_posts(doc: object) -> list | None:
    if isinstance(doc, dict) and isinstance(doc.get("posts"), list):
        return doc["posts"]
    if isinstance(doc, dict) and isinstance(doc.get("post"), dict):
        return [doc["post"]]
    return None


def read_api(path: Path, options: ReadOptions) -> Iterator[RawBatch]:
    batch = jsondoc.read_page(
        path, _api_posts, 'e621\'s {"posts": [...]} or {"post": {...}}', _api_row
    )
    if batch.raw.height:
        batch.raw = map_ratings(batch.raw)
    yield batch


def sniff_api(text: str) -> bool:
    # The nested score object sets e621 apart from Danbooru's and Gelbooru's posts; an empty
    # page (past the last one) is e621's alone too.
    if re.match(r'\s*\{\s*"posts"\s*:\s*\[\s*\]\s*\}\s*$', text):
        return True
    return (
        text.lstrip()[:1] == "{"
        and re.search(r'"posts?"\s*:', text) is not None
        and re.search(r'"score"\s*:\s*\{', text) is not None
    )


# --- db_export CSV ---------------------------------------------------------------------------

# Header name -> common name. Read by name: newer exports add columns and may reorder them.
EXPORT_COLUMNS = {
    "id": "post_id",
    "md5": "md5",
    "created_at": "created_at",
    "updated_at": "updated_at",
    "rating": "rating_raw",
    "score": "score",
    "up_score": "up_votes",
    "down_score": "down_votes",
    "fav_count": "favorites",
    "image_width": "width",
    "image_height": "height",
    "file_ext": "file_ext",
    "file_size": "file_size",
    "source": "source",
    "parent_id": "parent_id",
    "is_deleted": "is_deleted",
    "is_pending": "is_pending",
    "tag_string": "tags",
}
SNIFF_COLUMNS = {"id", "md5", "tag_string", "fav_count"}
DUCKDB_MEMORY = "512MB"
# Bounded: every scan thread holds its own buffers, and a few already outpace the one thread
# that types and writes the batches.
DUCKDB_THREADS = min(os.cpu_count() or 1, 8)
FIELD_COUNT = r"Expected Number of Columns: (\d+) Found: (\d+)"  # DuckDB's message


def _header(text: str) -> list[str]:
    """The column names on the file's first line; none when it is not a CSV line."""
    try:
        return next(csv.reader([text.split("\n", 1)[0].rstrip("\r")]), [])
    except csv.Error:
        return []


def sniff_export(text: str) -> bool:
    return set(_header(text)) >= SNIFF_COLUMNS


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _scan(path: Path, header: list[str]) -> str:
    """read_csv over the file, every column as text; broken rows go to reject_errors. DuckDB
    knows the columns by position (c0, c1...): whatever the header's names, SQL stays valid."""
    columns = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(header)))
    return (
        f"read_csv({_text(str(path))}, header = true, auto_detect = false, delim = ',', "
        f"quote = '\"', escape = '\"', columns = {{{columns}}}, store_rejects = true)"
    )


def _columns(header: list[str]) -> dict[str, str]:
    """Common name -> the scan's column holding it (the first of that name in the header)."""
    return {
        common: f"c{header.index(name)}"
        for name, common in EXPORT_COLUMNS.items()
        if name in header
    }


# Flags and timestamps are parsed by DuckDB, in parallel, while it scans (numbers are
# cheaper for polars than for a DuckDB regular expression that keeps '1.5' out). For each,
# the text of values it could not parse rides along as `_raw_<name>`, so that coerce can
# tell a missing value from an unreadable one (and say which value it was).
PARSED_BY_DUCKDB = {
    **dict.fromkeys(
        ("is_deleted", "is_pending"), "CASE {t} WHEN 't' THEN true WHEN 'f' THEN false END"
    ),
    **dict.fromkeys(("created_at", "updated_at"), "TRY_CAST({t} AS TIMESTAMP)"),
}


def _select(header: list[str]) -> str:
    """The export's columns under their common names: text, or parsed (see above)."""
    columns = _columns(header)
    text = {
        common: f"nullif({columns[common]}, '')" if common in columns else "NULL::VARCHAR"
        for common in EXPORT_COLUMNS.values()
    }
    parts = []
    for common, value in text.items():
        if common in PARSED_BY_DUCKDB:
            parsed = PARSED_BY_DUCKDB[common].format(t=value)
            parts.append(f"{parsed} AS {common}")
            parts.append(f"CASE WHEN ({parsed}) IS NULL THEN {value} END AS _raw_{common}")
        else:
            parts.append(f"{value} AS {common}")
    return ", ".join(parts)


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{DUCKDB_MEMORY}'")
    con.execute(f"SET threads = {DUCKDB_THREADS}")
    con.execute("SET preserve_insertion_order = true")  # record numbers follow file order
    con.execute("SET produce_arrow_string_view = true")  # polars takes these without a copy
    con.execute("SET enable_progress_bar = false")
    return con


def _kept_before(con: duckdb.DuckDBPyConnection) -> pl.Series:
    """For each row DuckDB rejected, how many rows it kept before it (sorted)."""
    lines = con.execute("SELECT DISTINCT line FROM reject_errors ORDER BY line").fetchnumpy()
    rows = lines["line"].astype(np.int64) - 1  # DuckDB counts the header as line 1
    return pl.Series(rows - 1 - np.arange(len(rows)), dtype=pl.Int64)


def _rejected(con: duckdb.DuckDBPyConnection, rows: int) -> Iterator[RawBatch]:
    query = (
        "SELECT DISTINCT ON (line) line, line_byte_position, error_message, csv_line "
        "FROM reject_errors ORDER BY line"
    )
    message = pl.col("error_message")
    expected, found = message.str.extract(FIELD_COUNT, 1), message.str.extract(FIELD_COUNT, 2)
    reason = (
        pl.when(found.is_not_null())
        .then(pl.format("wrong number of fields ({}, expected {})", found, expected))
        .otherwise(pl.format("unreadable CSV row: {}", message))
    )
    # DuckDB counts bytes from 1 (of the decompressed text): `tail -c +N` shows the row.
    where = pl.format(" (row begins at byte {})", "line_byte_position")
    for batch in con.execute(query).to_arrow_reader(rows):
        rejected = pl.from_arrow(batch).select(
            record=pl.col("line").cast(pl.Int64) - 1,
            reason=pl.concat_str([reason, where], ignore_nulls=True),
            raw=pl.col("csv_line").cast(pl.String),
        )
        yield RawBatch(raw=pl.DataFrame(), rejected=rejected)


def _unreadable_file(error: duckdb.Error) -> RawBatch:
    """The whole file as one rejected record (no record number: it is none of the rows); the
    reader's threshold then refuses the file, naming the reason."""
    reason = f"unreadable CSV file: {str(error).splitlines()[0]}"
    return RawBatch(
        raw=pl.DataFrame(),
        rejected=rejected_frame([{"record": None, "reason": reason, "raw": None}]),
    )


# --- tag categories from the tags table ------------------------------------------------------


def tags_table(folder: Path) -> Path | None:
    """The newest `tags-*.csv[.gz]` in `folder` (names carry the export date)."""
    tables = [p for p in folder.glob("tags-*.csv*") if p.name.endswith((".csv", ".csv.gz"))]
    return max(tables, key=lambda p: p.name, default=None)


def _categories(con: duckdb.DuckDBPyConnection, table: Path) -> tuple[pl.Enum, np.ndarray]:
    """Tag names as an Enum, and for each Enum index the position of its category in
    TABLE_CATEGORIES (len(TABLE_CATEGORIES) for none; the extra last entry for unknown tags).
    A broken row of this side table only loses that tag's category."""
    frame = con.execute(
        f"SELECT name, any_value(TRY_CAST(category AS INTEGER)) AS category "
        f"FROM read_csv({_text(str(table))}, header = true, all_varchar = true, "
        f"ignore_errors = true) WHERE name IS NOT NULL GROUP BY name"
    ).pl()
    none = len(TABLE_CATEGORIES)
    slots = frame["category"].replace_strict(
        {code: slot for slot, code in enumerate(TABLE_CATEGORIES)},
        default=none,
        return_dtype=pl.Int8,
    )
    return pl.Enum(frame["name"]), np.append(slots.to_numpy(), none).astype(np.int8)


def _category_lists(tags: pl.Series, names: pl.Enum, slots: np.ndarray) -> list[pl.Series]:
    """One list column per category. Each tag is looked up once, on the flat tags of the
    batch; a category's lists are then its tags, cut where each post's tags begin."""
    values = tags.explode(empty_as_null=False, keep_nulls=False)
    rows = np.repeat(np.arange(len(tags)), tags.list.len().fill_null(0).to_numpy())
    index = values.cast(names, strict=False).to_physical().cast(pl.Int64)
    slot = slots[index.fill_null(len(slots) - 1).to_numpy()]
    every_row = np.arange(len(tags) + 1)
    lists = []
    for position, column in enumerate(TABLE_CATEGORIES.values()):
        chosen = np.flatnonzero(slot == position)
        offsets = np.searchsorted(rows[chosen], every_row)
        chosen_tags = values.gather(chosen).to_arrow(compat_level=pl.CompatLevel.newest())
        lists.append(pl.Series(column, pa.LargeListArray.from_arrays(offsets, chosen_tags)))
    return lists


# --- reading the export ----------------------------------------------------------------------


def _mapped(
    frame: pl.DataFrame, first: int, categories: tuple[pl.Enum, np.ndarray] | None
) -> RawBatch:
    # Records are numbered among the rows DuckDB keeps; if it rejects some, the reader
    # renumbers them afterwards (see RawBatch.renumber).
    frame = map_ratings(
        frame.with_columns(
            record=pl.int_range(first, first + frame.height, dtype=pl.Int64),
            # e621 writes tag_string normalised (single spaces), so a plain split is exact.
            tags=pl.col("tags").str.split(" ").fill_null(pl.lit([], dtype=pl.List(pl.String))),
        )
    )
    if categories:
        frame = frame.with_columns(_category_lists(frame["tags"], *categories))
    return RawBatch(raw=frame)


def _export_batches(path: Path, options: ReadOptions) -> Iterator[RawBatch]:
    header, table = _header(head(path)), tags_table(path.parent)
    with _connect() as con:
        categories = _categories(con, table) if table else None
        query = f"SELECT {_select(header)} FROM {_scan(path, header)}"
        first = 1
        try:
            for batch in con.execute(query).to_arrow_reader(options.batch_rows):
                yield _mapped(pl.from_arrow(batch), first, categories)
                first += batch.num_rows
        except duckdb.Error as error:  # DuckDB cannot parse the file at all
            yield _unreadable_file(error)
            return
        kept_before = _kept_before(con)
        if len(kept_before):
            yield RawBatch(raw=pl.DataFrame(), renumber=kept_before)
            yield from _rejected(con, options.batch_rows)


def _prefetched(items: Iterator[RawBatch], depth: int = 1) -> Iterator[RawBatch]:
    """`items`, produced by a worker thread up to `depth` ahead: DuckDB scans and the tags are
    mapped while the caller types and writes the batch before (all release the GIL)."""
    queue: Queue = Queue(maxsize=depth)
    stop, done = threading.Event(), object()

    def put(item: object) -> None:
        while not stop.is_set():
            with contextlib.suppress(Full):
                return queue.put(item, timeout=0.1)

    def work() -> None:
        try:
            for item in items:
                if stop.is_set():
                    break
                put(item)
            put(done)
        except BaseException as error:  # handed to the caller, raised there
            put(error)
        finally:
            items.close()  # type: ignore[attr-defined]  # closes the DuckDB connection

    worker = threading.Thread(target=work, name="e621-export", daemon=True)
    worker.start()
    try:
        while (item := queue.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


def read_export(path: Path, options: ReadOptions) -> Iterator[RawBatch]:
    yield from _prefetched(_export_batches(path, options))


FORMATS = (
    Format("e621_api", SITE, "e621 /posts.json: a page of posts, or one post", sniff_api, read_api),
    Format(
        "e621_csv",
        SITE,
        "e621 db_export posts-YYYY-MM-DD.csv[.gz] (tags-*.csv beside it gives the tag categories)",
        sniff_export,
        read_export,
        full_export=True,
    ),
)
