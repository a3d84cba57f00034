"""Writing the catalog: posts refreshed from the normalized scores and raw posts, heads
mirrored from the registry, and scores for the posts the active head has not scored yet.

Scoring reads the image_key column of every cached embedding shard to find the images it
needs, then the vectors of only the shards that hold some, scoring each shard as it is read;
it inserts the new rows with the head's percentiles; nothing is ever re-embedded. Only one
process may write a DuckDB file: every writer runs in the `duckdb` pool.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from assets.catalog.statements import schema, statement
from assets.embeddings.store import EmbeddingStore, vectors_of
from assets.head.artifact import Head
from assets.head.registry import Registry
from assets.pool.schema import post_key_expr

POST_COLUMNS = {
    "site": pl.String,
    "post_id": pl.Int64,
    "md5": pl.String,
    "created_at": pl.Datetime("us", "UTC"),
    "score": pl.Int64,
    "favorites": pl.Int64,
    "width": pl.Int32,
    "height": pl.Int32,
    "file_ext": pl.String,
    "tags": pl.List(pl.String),
    "artist_tags": pl.List(pl.String),
    "character_tags": pl.List(pl.String),
    "copyright_tags": pl.List(pl.String),
    "species_tags": pl.List(pl.String),
    "meta_tags": pl.List(pl.String),
    "source_file": pl.String,
}
SCORE_COLUMNS = ("site", "post_id", "image_key", "is_canonical", "rating", "norm_score")
SCORE_STATE = ("is_deleted", "immature")


@contextmanager
def open_catalog(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A writing connection with the schema applied."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        for text in schema():
            con.execute(text)
        yield con
    finally:
        con.close()


def catalog_posts(current: pl.DataFrame, scores: pl.DataFrame, now) -> pl.DataFrame:
    """One row per current post: raw metadata (`current`) joined with its normalized score."""
    joined = (
        current.select(list(POST_COLUMNS))
        .cast(POST_COLUMNS)
        .join(scores.select(*SCORE_COLUMNS, *SCORE_STATE), on=["site", "post_id"], how="inner")
    )
    return joined.with_columns(post_key=post_key_expr(), loaded_at=pl.lit(now))


def refresh_posts(con: duckdb.DuckDBPyConnection, posts: pl.DataFrame) -> None:
    con.register("new_posts", posts.to_arrow())
    try:
        con.execute("BEGIN")
        con.execute(statement("catalog/refresh_posts"))
        con.execute("COMMIT")
    finally:
        con.unregister("new_posts")


def sync_heads(con: duckdb.DuckDBPyConnection, heads: Registry) -> str | None:
    """Mirror the registry into `heads`; returns the active version."""
    cards = heads.cards()
    frame = pl.DataFrame(
        {
            "version": [c["version"] for c in cards],
            "head_type": [c.get("head_type") for c in cards],
            "card": [json.dumps(c, default=str) for c in cards],
        },
        schema={"version": pl.String, "head_type": pl.String, "card": pl.String},
    )
    active = heads.active_version()
    con.register("registry_heads", frame.to_arrow())
    try:
        con.execute(statement("catalog/sync_heads"), {"active": active or ""})
    finally:
        con.unregister("registry_heads")
    return active


@dataclass(frozen=True)
class Scored:
    head: str
    requested: int  # posts with an image and no score under the head
    scored: int  # of those, posts whose image has an embedding
    without_embedding: int
    # Seconds per step (unscored, locate, read_predict, write), for benchmarks and logs.
    phases: dict[str, float] | None = field(default=None, compare=False)


def score_missing(con: duckdb.DuckDBPyConnection, head: Head, store: EmbeddingStore) -> Scored:
    """Score, under `head`, every post that has no score under it yet; then refresh that
    head's percentiles. Images are scored once however many posts share them.

    Only the shards' image_key columns are read to find the images; vectors are read from
    the shards that hold some of them, in threads, and scored as they come."""
    clock = _Clock()
    todo = con.execute(statement("catalog/unscored"), {"head": head.version}).pl()
    clock.lap("unscored")
    shards, matched = _locate(store, todo)
    clock.lap("locate")
    new = matched.select("post_key", "image_key").with_columns(
        score=pl.Series(_score_rows(store, shards, matched["at"].to_numpy(), head))
    )
    clock.lap("read_predict")
    if new.height:
        _write_scores(con, head.version, new)
    clock.lap("write")
    return Scored(head.version, todo.height, new.height, todo.height - new.height, clock.laps)


class _Clock:
    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = now - self.last
        self.last = now


@dataclass(frozen=True)
class _Shard:
    path: Path
    start: int  # the shard's first row, counted over all shards in order
    rows: int


def _locate(store: EmbeddingStore, todo: pl.DataFrame) -> tuple[list[_Shard], pl.DataFrame]:
    """The store's shards, and `todo`'s posts whose image is embedded, with `at`: the stored
    row, counted over all shards in order, that holds the image."""
    paths = store.shards() if todo.height else []
    if not paths:
        return [], todo.with_columns(at=pl.lit(0, pl.Int64)).clear()
    for path in paths:
        store.verify(path)
    with ThreadPoolExecutor(_workers()) as pool:
        columns = list(pool.map(_read_keys, paths))
    shards, start = [], 0
    for path, column in zip(paths, columns, strict=True):
        shards.append(_Shard(path, start, len(column)))
        start += len(column)
    chunks = [chunk for column in columns for chunk in column.chunks]
    keys = pl.Series("image_key", pa.chunked_array(chunks, pa.string()))
    stored = pl.DataFrame({"image_key": keys, "at": pl.int_range(keys.len(), eager=True)})
    matched = todo.with_row_index("post").join(stored, on="image_key", how="inner")
    # An image stored twice matches its posts twice; the first shard's copy is kept, as
    # lookup() does. Counting posts by row number finds that without hashing the keys again.
    posts = matched["post"].to_numpy()
    if len(posts) and np.bincount(posts).max() > 1:
        matched = matched.sort("post", "at").unique("post", keep="first", maintain_order=True)
    return shards, matched.drop("post")


def _read_keys(path: Path) -> pa.ChunkedArray:
    return pq.read_table(path, columns=["image_key"], use_threads=False)["image_key"]


def _score_rows(
    store: EmbeddingStore, shards: list[_Shard], at: np.ndarray, head: Head
) -> np.ndarray:
    """The head's score of each stored row in `at` (float64, as the scores table holds them).
    Shards holding none of the rows are not read; the others are read and scored a few at a
    time in threads: parquet decoding and torch both let go of the GIL."""
    if not len(at):
        return np.empty(0, np.float64)
    # np.unique hashes; sorting the integers and dropping repeats is several times faster.
    rows = np.sort(at)
    rows = rows[np.concatenate(([True], rows[1:] != rows[:-1]))]
    jobs = []
    for shard in shards:
        lo, hi = np.searchsorted(rows, [shard.start, shard.start + shard.rows])
        if hi > lo:
            jobs.append((shard, rows[lo:hi] - shard.start))
    predict = head.scorer()
    dim = store.identity.embed_dim

    def score(job: tuple[_Shard, np.ndarray]) -> np.ndarray:
        shard, local = job
        vectors = _read_vectors(shard.path, dim)
        return predict(vectors if len(local) == shard.rows else vectors[local])

    by_row = np.full(shards[-1].start + shards[-1].rows, np.nan, np.float32)
    workers = _workers()
    # torch's threads are shared out among the shards being scored: a full pool for each
    # would put more spinning threads than cores against the decoding (twice as slow on two
    # cores), while a large network on many cores still gets them all.
    with (
        _torch_threads(max(1, torch.get_num_threads() // workers)),
        ThreadPoolExecutor(workers) as pool,
    ):
        for (shard, local), scores in zip(jobs, _ahead(pool, score, jobs, workers), strict=True):
            by_row[shard.start + local] = scores
    return by_row[at].astype(np.float64)


def _read_vectors(path: Path, dim: int) -> np.ndarray:
    # memory_map: pages are decompressed straight from the page cache, not copied in first.
    table = pq.read_table(path, columns=["embedding"], memory_map=True, use_threads=False)
    return vectors_of(table["embedding"], dim)


def _ahead(
    pool: ThreadPoolExecutor, fn: Callable[[Any], Any], jobs: list, ahead: int
) -> Iterator[Any]:
    """fn(job) for each job in order, at most `ahead` submitted beyond the one taken:
    memory holds a few shards' vectors, not the store's."""
    pending: deque = deque()
    for job in jobs:
        pending.append(pool.submit(fn, job))
        if len(pending) > ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


@contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _write_scores(con: duckdb.DuckDBPyConnection, head: str, new: pl.DataFrame) -> None:
    """Insert `new` (post_key, image_key, score) under `head`, with every percentile of the
    head worked out again: each row's percentile depends on n, so adding rows moves them all.

    The ranks are computed here, not by a window in an UPDATE: on a first run the rows go in
    with their percentile and nothing is updated; on a later one only a double per row is,
    matched on rowid."""
    params = {"head": head}
    con.execute("BEGIN")
    try:
        earlier = con.execute(statement("catalog/head_score_rows"), params).fetchnumpy()
        done = len(earlier["score"])
        percentiles = percent_rank(np.concatenate([earlier["score"], new["score"].to_numpy()]))
        if done:
            update = pa.table({"row_id": earlier["row_id"], "percentile": percentiles[:done]})
            with _registered(con, "new_percentiles", update):
                con.execute(statement("catalog/percentiles"))
        rows = new.with_columns(percentile=pl.Series(percentiles[done:])).to_arrow()
        with _registered(con, "new_scores", rows):
            con.execute(statement("catalog/insert_scores"), params)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def percent_rank(scores: np.ndarray) -> np.ndarray:
    """DuckDB's percent_rank() over ORDER BY score: (rank - 1) / (n - 1), rank counting the
    scores strictly below plus one (ties share the lowest), 0 when n is 1."""
    n = len(scores)
    if n < 2:
        return np.zeros(n, np.float64)
    order = np.argsort(scores)
    ordered = scores[order]
    # Rank - 1 of each sorted score: the position of the first of its run of ties.
    first = np.zeros(n, np.int64)
    differs = ordered[1:] != ordered[:-1]
    nan = np.isnan(ordered)
    differs &= ~(nan[1:] & nan[:-1])  # SQL sorts NaNs last, as equals
    starts = np.flatnonzero(differs) + 1
    first[starts] = starts
    np.maximum.accumulate(first, out=first)
    out = np.empty(n, np.float64)
    out[order] = first / (n - 1)
    return out


@contextmanager
def _registered(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> Iterator[None]:
    """`table` visible to SQL as `name`, in record batches of a row group's size: DuckDB
    scans the batches in parallel, where it would read one large batch on one thread."""
    batches = table.combine_chunks().to_batches(max_chunksize=122_880)
    con.register(name, pa.Table.from_batches(batches, table.schema))
    try:
        yield
    finally:
        con.unregister(name)


def apply_retention(con: duckdb.DuckDBPyConnection, keep: int) -> None:
    con.execute(statement("catalog/retention"), {"keep": keep})


def counts(con: duckdb.DuckDBPyConnection, head: str) -> dict:
    row = con.execute(statement("catalog/counts"), {"head": head}).fetchone()
    names = ("posts", "posts_with_image", "scored", "heads_with_scores")
    return dict(zip(names, row, strict=True))


def score_histogram(con: duckdb.DuckDBPyConnection, head: str) -> np.ndarray:
    """The active head's scores, for the metadata's histogram."""
    rows = con.execute(statement("catalog/head_scores"), {"head": head}).fetchnumpy()
    return rows["score"]
