"""Writing the catalog: posts refreshed from the normalized scores and raw posts, heads
mirrored from the registry, and scores for the posts the active head has not scored yet.

Scoring reads the cached embedding shards (only the keys it needs), applies the head in
batches, and inserts the new rows; nothing is ever re-embedded. Only one process may write a
DuckDB file: every writer runs in the `duckdb` pool.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from assets.catalog.statements import schema, statement
from assets.embeddings.store import EmbeddingStore
from assets.head.artifact import Head
from assets.head.registry import Registry

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
    return joined.with_columns(
        post_key=pl.format("{}:{}", "site", "post_id"), loaded_at=pl.lit(now)
    )


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


def score_missing(
    con: duckdb.DuckDBPyConnection, head: Head, store: EmbeddingStore, batch: int = 1_000_000
) -> Scored:
    """Score, under `head`, every post that has no score under it yet; then refresh that
    head's percentiles. Images are scored once however many posts share them."""
    todo = pl.from_arrow(con.execute(statement("catalog/unscored"), {"head": head.version}).arrow())
    images = todo["image_key"].unique()
    scored_images = []
    for start in range(0, max(images.len(), 1), batch):
        keys, vectors = store.lookup(images.slice(start, batch))
        if keys.len():
            scored_images.append(pl.DataFrame({"image_key": keys, "score": head.predict(vectors)}))
    by_image = (
        pl.concat(scored_images)
        if scored_images
        else pl.DataFrame(schema={"image_key": pl.String, "score": pl.Float32})
    )
    new = todo.join(by_image, on="image_key", how="inner").with_columns(
        pl.col("score").cast(pl.Float64)
    )
    if new.height:
        con.register("new_scores", new.to_arrow())
        try:
            con.execute("BEGIN")
            con.execute(statement("catalog/insert_scores"), {"head": head.version})
            con.execute(statement("catalog/percentiles"), {"head": head.version})
            con.execute("COMMIT")
        finally:
            con.unregister("new_scores")
    return Scored(head.version, todo.height, new.height, todo.height - new.height)


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
