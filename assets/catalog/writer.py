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
from orchestration import objectstore
from orchestration.clock import Clock
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
    path: Path,
    timeout_s: float = 0.0,
    on_wait: Callable[[str], None] | None = None,
    memory_mb: int | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A writing connection with the schema applied, DuckDB held to `memory_mb` when given
    (`[catalog] memory_mb`). While another process has the file open, it waits up to
    `timeout_s` (telling `on_wait`), then raises CatalogBusy."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = lock.connect(
        path, config=lock.memory_config(memory_mb), timeout_s=timeout_s, on_wait=on_wait
    )
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


# Every column of `posts` a refresh writes (the counters added_seq and changed_seq are the
# writer's own): what a frame given to refresh_posts is completed to.
CATALOG_POSTS: dict[str, pl.DataType] = {
    "post_key": pl.String,
    **{c: t for c, t in POST_COLUMNS.items() if c != "source_file"},
    "image_key": pl.String,
    "rating": pl.String,
    "norm_score": pl.Float64,
    "is_canonical": pl.Boolean,
    "is_deleted": pl.Boolean,
    "immature": pl.Boolean,
    "source_file": pl.String,
    "loaded_at": pl.Datetime("us", "UTC"),
}
VALUE_COLUMNS = {
    "post_key": pl.String,
    "norm_score": pl.Float64,
    "is_canonical": pl.Boolean,
    "immature": pl.Boolean,
}


@dataclass(frozen=True)
class Refreshed:
    """What a refresh of `posts` changed, under which change number (the last one issued
    when it changed nothing)."""

    seq: int
    written: int  # rows inserted: new posts and posts with any column changed
    dropped: int  # posts gone, or numbered again because their image changed
    updated: int = 0  # posts whose normalized values alone changed


def refresh_posts(con: duckdb.DuckDBPyConnection, posts: pl.DataFrame) -> Refreshed:
    """Make `posts` hold exactly these posts (every current one), writing only the rows that
    differ: a run that changes nothing writes nothing, and the rows it writes carry its change
    number."""
    frame = _complete(posts, CATALOG_POSTS).to_arrow()
    with _registered(con, "new_posts", frame), _transaction(con):
        run_script(con, "catalog/changed_posts")
        return _release_unused(con, _write_changed(con))


def refresh_current(
    con: duckdb.DuckDBPyConnection, parts: list[Location], raw: list[Location], now
) -> Refreshed:
    """refresh_posts of every current post without holding them in Python: DuckDB joins
    normalized_scores' `parts` with the winning records in the `raw` posts files, out of
    core, and writes the rows that differ."""
    if not parts or not raw:
        return refresh_posts(con, pl.DataFrame(schema=CATALOG_POSTS))
    for path in (parts[0], raw[0]):
        objectstore.register(con, path)
    params = {
        "parts": [objectstore.url(p) for p in parts],
        "raw": [objectstore.url(p) for p in raw],
        "now": now,
    }
    with _transaction(con):
        run_script(con, "catalog/current_posts", params)
        empty = con.execute("SELECT count(*) = 0 FROM posts").fetchone()[0]
        run_script(con, "catalog/first_posts" if empty else "catalog/changed_posts")
        refreshed = _release_unused(con, _write_changed(con))
        con.execute("DROP TABLE IF EXISTS new_posts")
    return refreshed


def apply_post_changes(
    con: duckdb.DuckDBPyConnection,
    upserts: pl.DataFrame,
    values: pl.DataFrame | None = None,
    removed: pl.DataFrame | None = None,
) -> Refreshed:
    """Change `posts` by what changed and nothing else: `upserts` (whole rows of new posts and
    posts whose record changed), `values` (post_key and the normalized values of posts whose
    record did not) and `removed` (post_key of posts gone). Costs the changes, not the
    catalog."""
    values = values if values is not None else pl.DataFrame(schema=VALUE_COLUMNS)
    removed = removed if removed is not None else pl.DataFrame(schema={"post_key": pl.String})
    with (
        _registered(con, "upserts", _complete(upserts, CATALOG_POSTS).to_arrow()),
        _registered(con, "values", _complete(values, VALUE_COLUMNS).to_arrow()),
        _registered(con, "removed", removed.select(pl.col("post_key").cast(pl.String)).to_arrow()),
        _transaction(con),
    ):
        run_script(con, "catalog/delta_posts")
        refreshed = _write_changed(con)
        updated = run_script(con, "catalog/update_values", {"seq": refreshed.seq}).fetchone()[0]
        return _release_unused(
            con, Refreshed(refreshed.seq, refreshed.written, refreshed.dropped, updated)
        )


def _write_changed(con: duckdb.DuckDBPyConnection) -> Refreshed:
    """Write the prepared `changed` rows in place of `leaving` under a new change number."""
    written = con.execute("SELECT count(*) FROM changed").fetchone()[0]
    seq = next_change(con)
    run_script(con, "catalog/refresh_posts", {"seq": seq})
    dropped = con.execute(
        "SELECT count(*) FROM dropped_posts WHERE changed_seq = ?", [seq]
    ).fetchone()[0]
    return Refreshed(seq, written, dropped)


def _release_unused(con: duckdb.DuckDBPyConnection, done: Refreshed) -> Refreshed:
    """`done`, its change number given back when it changed nothing."""
    if done.written or done.dropped or done.updated:
        return done
    run_script(con, "catalog/release_change", {"seq": done.seq})
    return Refreshed(done.seq - 1, 0, 0, 0)


def next_change(con: duckdb.DuckDBPyConnection) -> int:
    """The next change number, taken inside the caller's transaction."""
    return run_script(con, "catalog/next_change").fetchone()[0]


def change_seq(con: duckdb.DuckDBPyConnection) -> int:
    """The last change number issued (0 before any)."""
    found = con.execute("SELECT value FROM catalog_state WHERE key = 'change_seq'").fetchone()
    return found[0] if found else 0


def _complete(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """`frame` with every column of `schema`, in its order and types (absent ones null)."""
    return frame.select(
        [
            (pl.col(c) if c in frame.columns else pl.lit(None)).cast(t).alias(c)
            for c, t in schema.items()
        ]
    )


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
    by their added_seq) and embedding shards written since. DuckDB reads the image_key column
    of the new shards (on object storage too) and matches it with the posts, which stay in
    DuckDB: Python sees only row numbers. Earlier shards are read only for new posts whose
    image none of the new ones holds (an image shared with an older post, or one never
    embedded). Earlier posts waiting for their image are looked up only for images of new
    shards that no new post claimed. Vectors are read from the shards holding some of the
    images, in threads, and scored as they come."""
    clock = Clock()
    cursor = _cursor(con, head.version)
    shards = store.shards()
    fresh = [p for p in shards if _name(store, p) not in cursor.shards]
    seen = [p for p in shards if _name(store, p) in cursor.shards]
    for path in fresh:
        store.verify(path)
    through = -1 if cursor.through is None else cursor.through
    try:
        run_script(con, "catalog/unscored", {"through": through})
        clock.lap("unscored")
        layout = _Layout.of(con, store, fresh)
        post = at = np.empty(0, np.int64)
        if fresh:
            with layout.registered(con):
                run_script(con, "catalog/shard_keys", {"files": layout.files})
            if cursor.through is not None:
                params = {"through": through, "head": head.version}
                run_script(con, "catalog/waiting_posts", params)
            post, at = _first_copies(*_pairs(run_script(con, "catalog/matches")))
        requested = run_script(con, "catalog/todo_count").fetchone()[0]
        strays = np.setdiff1d(np.arange(requested), post, assume_unique=True)
        if len(strays) and seen:
            more = _Layout.of(con, store, seen, layout.end)
            with more.registered(con), _registered(con, "strays", pa.table({"post": strays})):
                more_post, more_at = _pairs(
                    run_script(con, "catalog/stray_matches", {"files": more.files})
                )
            post, at = _first_copies(
                np.concatenate([post, more_post]), np.concatenate([at, more_at])
            )
            shards = [*layout.shards, *more.shards]
        else:
            shards = layout.shards
        clock.lap("locate")
        scores = _score_rows(store, shards, at, head)
        clock.lap("read_predict")
        rerank = _rerank_due(cursor.ranked, cursor.scored + len(post), rerank_growth)
        names = pa.table({"shard": pa.array([_name(store, p) for p in fresh], pa.string())})
        with _transaction(con):
            if len(post):  # a change number only for a run that writes scores
                _write_scores(con, head.version, post, scores, rerank, next_change(con))
            with _registered(con, "read_shards", names):
                run_script(
                    con,
                    "catalog/advance_cursor",
                    {"head": head.version, "through": cursor.latest},
                )
        clock.lap("write")
    finally:
        run_script(con, "catalog/drop_run_tables")
    return Scored(
        head.version,
        requested,
        len(post),
        requested - len(post),
        rerank and len(post) > 0,
        clock.laps,
    )


def _pairs(result: duckdb.DuckDBPyConnection) -> tuple[np.ndarray, np.ndarray]:
    rows = result.fetchnumpy()
    return np.asarray(rows["post"], np.int64), np.asarray(rows["at"], np.int64)


def _first_copies(post: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One (post, at) per post: of an image stored twice, the first shard's copy, as lookup()
    keeps it. Counting posts finds repeats without sorting or hashing; only then are the
    pairs sorted."""
    if not len(post) or np.bincount(post).max() == 1:
        return post, at
    order = np.lexsort((at, post))
    post, at = post[order], at[order]
    first = _run_starts(post)
    return post[first], at[first]


def _run_starts(ordered: np.ndarray) -> np.ndarray:
    """Which items of a sorted array differ from the one before: the first of each run."""
    return np.concatenate(([True], ordered[1:] != ordered[:-1]))


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


@dataclass(frozen=True)
class _Shard:
    path: Location
    start: int  # the shard's first row, counted over all the shards read, in order
    rows: int


@dataclass(frozen=True)
class _Layout:
    """Embedding shards a run reads, each with its first row counted over all of them."""

    shards: list[_Shard]
    files: list[str]  # their paths or URLs, as the SQL is given them
    names: list[str]  # and as DuckDB reports them back (it normalises URLs)

    @classmethod
    def of(
        cls,
        con: duckdb.DuckDBPyConnection,
        store: EmbeddingStore,
        paths: list[Location],
        start: int = 0,
    ) -> _Layout:
        if not paths:
            return cls([], [], [])
        objectstore.register(con, store.dir)
        files = [objectstore.url(p) for p in paths]
        found = con.execute(statement("catalog/shard_rows"), {"files": files}).fetchall()
        shards, names = [], []
        for path, (name, rows) in zip(paths, found, strict=True):
            if not name.endswith(_name(store, path)):
                raise RuntimeError(f"DuckDB listed {name} where {path} was expected")
            shards.append(_Shard(path, start, rows))
            names.append(name)
            start += rows
        return cls(shards, files, names)

    @property
    def end(self) -> int:
        return self.shards[-1].start + self.shards[-1].rows if self.shards else 0

    def registered(self, con: duckdb.DuckDBPyConnection):
        """`shard_starts` (filename, start) visible to SQL."""
        starts = pa.table(
            {
                "filename": pa.array(self.names, pa.string()),
                "start": pa.array([s.start for s in self.shards], pa.int64()),
            }
        )
        return _registered(con, "shard_starts", starts)


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
    rows = rows[_run_starts(rows)]
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


def _write_scores(
    con: duckdb.DuckDBPyConnection,
    head: str,
    post: np.ndarray,
    scores: np.ndarray,
    rerank: bool,
    seq: int,
) -> None:
    """Insert `scores` of the `todo` rows `post` (at least one) under `head` with their
    percentiles, inside the caller's transaction.

    Daily: the new scores are ranked against the head's reference list and nothing else moves.
    When `rerank`: every score of the head is ranked again (the ranks computed here, not by a
    window in an UPDATE: on a first run the rows go in with their percentile and nothing is
    updated) and becomes the new reference."""
    params = {"head": head, "seq": seq}
    if rerank:
        earlier = con.execute(statement("catalog/head_score_rows"), {"head": head}).fetchnumpy()
        done = len(earlier["score"])
        every = np.concatenate([earlier["score"], scores])
        percentiles, ordered = percent_rank_sorted(every)
        ranked = pa.table({"row_id": earlier["row_id"], "percentile": percentiles[:done]})
        reference = pa.table({"score": ordered})
        with _registered(con, "ranked", ranked), _registered(con, "reference", reference):
            run_script(con, "catalog/rerank", params)
        percentiles = percentiles[done:]
    else:
        reference = con.execute(statement("catalog/reference"), {"head": head}).fetchnumpy()
        percentiles = rank_against(reference["score"], scores)
    insert_scores(con, head, post, scores, percentiles, seq)


def insert_scores(
    con: duckdb.DuckDBPyConnection,
    head: str,
    post: np.ndarray,
    scores: np.ndarray,
    percentiles: np.ndarray,
    seq: int = 0,
) -> None:
    """Append the scores of the run's `todo` rows `post` to `scores` under `head`, stamped
    with the change number `seq`."""
    rows = pa.table({"post": post, "score": scores, "percentile": percentiles})
    with _registered(con, "new_scores", rows):
        con.execute(statement("catalog/insert_scores"), {"head": head, "seq": seq})


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
