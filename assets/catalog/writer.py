"""Writing the catalog: posts refreshed from the normalized scores and raw posts, heads
mirrored from the registry, and scores for the posts the active head has not scored yet.

A run scores, from cached embeddings (nothing is ever re-embedded), what is new since the
active head's last run: each head keeps a cursor (the posts and embedding shards it has looked
at), so a daily run costs its new posts, not the catalog. Percentiles rank against a per-head
reference list that only a large change rebuilds. Only one process may write a DuckDB file:
every writer runs in the `duckdb` pool, and one outside it waits for the lock (see lock.py).
Each step that changes several tables runs in one transaction, so a run killed at any moment
leaves the catalog as it was before that step.
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
import torch

from assets.catalog import lock
from assets.catalog.statements import run_script, schema, statement
from assets.embeddings.store import EmbeddingStore
from assets.head.artifact import Head
from assets.head.registry import Registry
from assets.pool.schema import post_key_expr
from orchestration.objectstore import Location
from orchestration.threads import torch_threads

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
def open_catalog(
    path: Path, timeout_s: float = 0.0, on_wait: Callable[[str], None] | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A writing connection with the schema applied. While another process has the file open,
    it waits up to `timeout_s` (telling `on_wait`), then raises CatalogBusy."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = lock.connect(path, timeout_s=timeout_s, on_wait=on_wait)
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
    with (
        _registered(con, "new_posts", posts.with_row_index("arrival").to_arrow()),
        _transaction(con),
    ):
        run_script(con, "catalog/refresh_posts")


@contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """The statements run inside are committed together or not at all: a script of several
    statements killed half-way would otherwise leave some tables changed and others not."""
    con.execute("BEGIN")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


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
    with _registered(con, "registry_heads", frame.to_arrow()), _transaction(con):
        run_script(con, "catalog/sync_heads", {"active": active or ""})
    return active


@dataclass(frozen=True)
class Scored:
    head: str
    requested: int  # posts this run looked for an embedding for: new ones, and waiting ones
    scored: int  # of those, posts whose image has an embedding
    without_embedding: int
    reranked: bool = False  # every percentile of the head was worked out again
    # Seconds per step (unscored, locate, read_predict, write), for benchmarks and logs.
    phases: dict[str, float] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class _Cursor:
    """Where a head's scoring stands (sql/catalog/cursor.sql)."""

    through: int | None  # every post up to this added_seq was looked at; None: never scored
    shards: frozenset[str]  # the embedding shards read, relative to the store
    scored: int
    ranked: int  # scores in the head's percentile reference
    latest: int  # the catalog's newest added_seq


def score_missing(
    con: duckdb.DuckDBPyConnection,
    head: Head,
    store: EmbeddingStore,
    rerank_growth: float = 0.1,
) -> Scored:
    """Score, under `head`, every post that has no score under it and whose image is embedded.

    A run costs what is new since the head's last run: posts the catalog took in since (found
    by their added_seq) and embedding shards written since. It reads the image_key column of
    the new shards; earlier shards only for new posts whose image none of them holds (an image
    shared with an older post, or one never embedded). Earlier posts waiting for their image
    are looked up only for images of new shards that no new post claimed. Vectors are read
    from the shards holding some of the images, in threads, and scored as they come."""
    clock = _Clock()
    cursor = _cursor(con, head.version)
    shards = store.shards()
    fresh = [p for p in shards if _name(store, p) not in cursor.shards]
    seen = [p for p in shards if _name(store, p) in cursor.shards]
    for path in fresh:
        store.verify(path)
    through = -1 if cursor.through is None else cursor.through
    todo = con.execute(statement("catalog/new_posts"), {"through": through}).pl()
    clock.lap("unscored")
    index = _Index.of(store, fresh)
    matched = index.match(todo)
    arrived = index.keys.select("image_key").join(todo, on="image_key", how="anti").unique()
    if arrived.height and cursor.through is not None:
        with _registered(con, "arrived_keys", arrived.to_arrow()):
            params = {"through": through, "head": head.version}
            waiting = con.execute(statement("catalog/waiting_posts"), params).pl()
        todo = pl.concat([todo, waiting])
        matched = pl.concat([matched, index.match(waiting)])
    strays = todo.join(matched, on="post_key", how="anti")
    if strays.height and seen:
        index = index.extend(store, seen)
        matched = pl.concat([matched, index.match(strays)])
    clock.lap("locate")
    new = matched.select("post_key", "image_key").with_columns(
        score=pl.Series(_score_rows(store, index.shards, matched["at"].to_numpy(), head))
    )
    clock.lap("read_predict")
    rerank = _rerank_due(cursor.ranked, cursor.scored + new.height, rerank_growth)
    fresh_names = pa.table({"shard": pa.array([_name(store, p) for p in fresh], pa.string())})
    with _transaction(con):
        _write_scores(con, head.version, new, rerank)
        with _registered(con, "read_shards", fresh_names):
            run_script(
                con,
                "catalog/advance_cursor",
                {"head": head.version, "through": cursor.latest},
            )
    clock.lap("write")
    return Scored(
        head.version,
        todo.height,
        new.height,
        todo.height - new.height,
        rerank and new.height > 0,
        clock.laps,
    )


def _cursor(con: duckdb.DuckDBPyConnection, head: str) -> _Cursor:
    through, shards, scored, ranked, latest = con.execute(
        statement("catalog/cursor"), {"head": head}
    ).fetchone()
    return _Cursor(through, frozenset(shards), scored, ranked, latest)


def _name(store: EmbeddingStore, path: Location) -> str:
    return path.relative_to(store.dir).as_posix()


def _rerank_due(ranked: int, scored: int, growth: float) -> bool:
    """Rank every score again when the reference is missing or the head's scores have grown
    or shrunk by more than `growth` of it: percentiles then stay within the catalog's
    ranks to about that share, and daily runs never rewrite them."""
    return ranked == 0 or abs(scored - ranked) > growth * ranked


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
    path: Location
    start: int  # the shard's first row, counted over all the shards read, in order
    rows: int


@dataclass(frozen=True)
class _Index:
    """The image keys of some embedding shards: `keys` holds image_key and `at`, the row that
    holds it, counted over `shards` in order."""

    shards: list[_Shard]
    keys: pl.DataFrame

    @classmethod
    def of(cls, store: EmbeddingStore, paths: list[Location], start: int = 0) -> _Index:
        columns = list(_mapped(store.image_keys, paths))
        shards = []
        for path, column in zip(paths, columns, strict=True):
            shards.append(_Shard(path, start, len(column)))
            start += len(column)
        chunks = [chunk for column in columns for chunk in column.chunks]
        keys = pl.Series("image_key", pa.chunked_array(chunks, pa.string()))
        at = pl.int_range(start - keys.len(), start, eager=True, dtype=pl.Int64)
        return cls(shards, pl.DataFrame({"image_key": keys, "at": at}))

    def extend(self, store: EmbeddingStore, paths: list[Location]) -> _Index:
        """This index and the keys of `paths` after it."""
        end = self.shards[-1].start + self.shards[-1].rows if self.shards else 0
        more = _Index.of(store, paths, end)
        return _Index(self.shards + more.shards, pl.concat([self.keys, more.keys]))

    def match(self, posts: pl.DataFrame) -> pl.DataFrame:
        """`posts` (post_key, image_key) whose image is here, with `at`. An image stored twice
        matches its posts twice; the first shard's copy is kept, as lookup() does. Counting
        posts by row number finds that without hashing the keys again."""
        matched = posts.with_row_index("post").join(self.keys, on="image_key", how="inner")
        rows = matched["post"].to_numpy()
        if len(rows) and np.bincount(rows).max() > 1:
            matched = matched.sort("post", "at").unique("post", keep="first", maintain_order=True)
        return matched.drop("post")


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

    def score(job: tuple[_Shard, np.ndarray]) -> np.ndarray:
        shard, local = job
        vectors = store.vectors(shard.path)
        return predict(vectors if len(local) == shard.rows else vectors[local])

    by_row = np.full(shards[-1].start + shards[-1].rows, np.nan, np.float32)
    workers = _workers(len(jobs))
    # torch's threads are shared out among the shards being scored: a full pool for each
    # would put more spinning threads than cores against the decoding (twice as slow on two
    # cores), while a large network on many cores still gets them all.
    with torch_threads(max(1, torch.get_num_threads() // workers)):
        for (shard, local), scores in zip(jobs, _mapped(score, jobs), strict=True):
            by_row[shard.start + local] = scores
    return by_row[at].astype(np.float64)


def _mapped(fn: Callable[[Any], Any], jobs: list) -> Iterator[Any]:
    """fn(job) for each job in order. One job runs in this thread (whose torch thread pool is
    warm; a new thread's costs milliseconds to start). More run in threads, at most a few
    submitted beyond the one taken: memory holds a few shards' vectors, not the store's."""
    workers = _workers(len(jobs))
    if workers == 1:
        yield from map(fn, jobs)
        return
    with ThreadPoolExecutor(workers) as pool:
        pending: deque = deque()
        for job in jobs:
            pending.append(pool.submit(fn, job))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _workers(jobs: int) -> int:
    return max(1, min(4, os.cpu_count() or 1, jobs))


def _write_scores(con: duckdb.DuckDBPyConnection, head: str, new: pl.DataFrame, rerank: bool):
    """Insert `new` (post_key, image_key, score) under `head` with their percentiles, inside
    the caller's transaction.

    Daily: the new scores are ranked against the head's reference list and nothing else moves.
    When `rerank`: every score of the head is ranked again (the ranks computed here, not by a
    window in an UPDATE: on a first run the rows go in with their percentile and nothing is
    updated) and becomes the new reference."""
    if not new.height:
        return
    params = {"head": head}
    scores = new["score"].to_numpy()
    if rerank:
        earlier = con.execute(statement("catalog/head_score_rows"), params).fetchnumpy()
        done = len(earlier["score"])
        every = np.concatenate([earlier["score"], scores])
        percentiles, ordered = percent_rank_sorted(every)
        ranked = pa.table({"row_id": earlier["row_id"], "percentile": percentiles[:done]})
        reference = pa.table({"score": ordered})
        with _registered(con, "ranked", ranked), _registered(con, "reference", reference):
            run_script(con, "catalog/rerank", params)
        percentiles = percentiles[done:]
    else:
        reference = con.execute(statement("catalog/reference"), params).fetchnumpy()["score"]
        percentiles = rank_against(reference, scores)
    insert_scores(con, head, new.with_columns(percentile=pl.Series(percentiles)))


def insert_scores(con: duckdb.DuckDBPyConnection, head: str, rows: pl.DataFrame) -> None:
    """Append `rows` (post_key, image_key, score, percentile) to `scores` under `head`."""
    with _registered(con, "new_scores", rows.to_arrow()):
        con.execute(statement("catalog/insert_scores"), {"head": head})


def rank_against(reference: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Each score's percent_rank among the ascending `reference`: the share of it strictly
    below, over n - 1, capped at 1 (a score above every one ranks as the highest). The same
    formula the reference's own rows were ranked by, so percentiles stay in the scores' order."""
    if len(reference) and not (reference[1:] >= reference[:-1]).all():
        reference = np.sort(reference)  # DuckDB returns rows as inserted; this guards it
    n = len(reference)
    if n < 2:
        return np.zeros(len(scores), np.float64)
    below = np.searchsorted(reference, scores, side="left")
    return np.minimum(below / (n - 1), 1.0)


def percent_rank(scores: np.ndarray) -> np.ndarray:
    """DuckDB's percent_rank() over ORDER BY score: (rank - 1) / (n - 1), rank counting the
    scores strictly below plus one (ties share the lowest), 0 when n is 1."""
    return percent_rank_sorted(scores)[0]


def percent_rank_sorted(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """percent_rank(scores), and the scores in ascending order (which ranking sorts anyway:
    the reference list a rerank stores)."""
    n = len(scores)
    order = np.argsort(scores)
    ordered = scores[order]
    if n < 2:
        return np.zeros(n, np.float64), ordered
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
    return out, ordered


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
    with _transaction(con):
        run_script(con, "catalog/retention", {"keep": keep})


def counts(con: duckdb.DuckDBPyConnection, head: str) -> dict:
    row = con.execute(statement("catalog/counts"), {"head": head}).fetchone()
    names = ("posts", "posts_with_image", "scored", "unscored", "heads_with_scores")
    return dict(zip(names, row, strict=True))


def score_histogram(con: duckdb.DuckDBPyConnection, head: str) -> np.ndarray:
    """The active head's scores, for the metadata's histogram."""
    rows = con.execute(statement("catalog/head_scores"), {"head": head}).fetchnumpy()
    return rows["score"]
