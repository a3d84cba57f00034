"""`scoretag bench catalog`: scoring the catalog from cached embeddings, in full and
incrementally, against a bare float32 matrix-vector product over the same embeddings.

Setup (not timed): `posts` unit fp16 embeddings written as the embeddings stage writes them
(shards of its default `[embed] shard_size`, `shard_rows`), posts each with their own image,
and a ridge head fitted to a few thousand synthetic labels, saved in a registry and activated.

Each run does what a `scored_catalog` run does, each part timed (`full_phases`,
`incremental_phases`): `refresh` (the first run: refresh_posts, the catalog's posts made to
hold every current post; the next: apply_post_changes of the new posts, as a daily run applies
normalized_scores' change file), `heads` (sync_heads), `score` (score_missing), `summary`
(apply_retention, counts, score_histogram) and `checkpoint` (the CHECKPOINT that closing the
catalog writes).

* `full_seconds`: the first run, on an empty catalog, every post scored; `phases` splits its
  score_missing into finding the unscored posts (`unscored`), finding their images in the
  shards (`locate`), reading and scoring the vectors (`read_predict`) and writing (`write`).
* `incremental_seconds`: the next run, after 1% new posts arrive with a new shard;
  `incremental_score_phases` splits its score_missing as `phases` does.
  `incremental_over_full` = `incremental_seconds` / `full_seconds`, whole runs both (target
  0.05 or below).
* `matmul_seconds`: the median of three bare `X @ w` over the same embeddings, already in memory
  as float32; `ratio_to_matmul` = the full run's score_missing (`full_phases.score`) /
  `matmul_seconds` (target 4 or below); `rescore_per_s` = `posts` / `full_phases.score`.
* `floors`: what the full scoring cannot go below with this storage and schema, each timed
  alone in the same run: `read_vectors_seconds` (reading every cached vector, one shard after
  another, scoring none) and `insert_seconds` (inserting as many score rows, with their
  post_key and image_key strings, into a scratch catalog's `scores` as the writer does), and
  `floor_over_matmul`, their sum over `matmul_seconds`: a `ratio_to_matmul` target below it
  cannot be met here.
* `peak_rss_mb`: taken before the float32 copy that only the bare product needs.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from assets.pool.schema import post_key_expr
from orchestration.backbone import Identity
from orchestration.settings import CatalogSettings, EmbedSettings
from scoretag.benchmarks.memory import peak_rss_mb

SHARD_ROWS = EmbedSettings().shard_size  # as the embeddings stage writes them by default
CATALOG = CatalogSettings()  # what a scored_catalog run is given by default
LABELS = 4_096
NEW_SHARE = 0.01
SITE = "bench"
FIRST, SECOND = f"{SITE}/first.csv", f"{SITE}/second.csv"  # the partitions of the two runs
NOW = datetime(2026, 1, 1, tzinfo=UTC)

if TYPE_CHECKING:
    from collections.abc import Callable

    import duckdb

    from assets.catalog.writer import Scored
    from assets.embeddings.store import EmbeddingStore
    from assets.head.artifact import Head
    from assets.head.registry import Registry


def _identity(dim: int) -> Identity:
    return Identity(
        model="bench-synthetic",
        weights="random:seed=0",
        image_size=(224, 224),
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        interpolation="bicubic",
        resize_mode="shortest",
        fill_color=0,
        embed_dim=dim,
    )


def _unit_fp16(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.standard_normal((n, dim), dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v.astype(np.float16)


def _image_keys(rng: np.random.Generator, n: int) -> list[str]:
    """md5-like keys: random, so that their order says nothing about where they are stored."""
    raw = rng.bytes(16 * n).hex()
    return [raw[32 * i : 32 * (i + 1)] for i in range(n)]


def _write_embeddings(
    store: EmbeddingStore, keys: list[str], rng: np.random.Generator, partition: str
) -> None:
    dim = store.identity.embed_dim
    for start in range(0, len(keys), SHARD_ROWS):
        chunk = keys[start : start + SHARD_ROWS]
        store.write_shard(partition, chunk, _unit_fp16(rng, len(chunk), dim))


def _posts(keys: list[str]) -> pl.DataFrame:
    """One post per image, with what the catalog's views read."""
    n = len(keys)
    ids = np.arange(1, n + 1)
    return pl.DataFrame(
        {
            "site": SITE,
            "post_id": ids,
            "image_key": keys,
            "md5": keys,
            "rating": pl.Series(np.array(["g", "s", "q", "e"])[ids % 4]),
            "score": ids % 97,
            "favorites": ids % 211,
            "norm_score": (ids * 7919 % n) / n,
            "is_canonical": True,
            "is_deleted": False,
            "immature": False,
            "loaded_at": NOW,
        }
    ).with_columns(post_key=post_key_expr())


def _head(store: EmbeddingStore, registry: Registry, seed: int) -> Head:
    """A ridge head on `LABELS` synthetic labels that follow a planted direction."""
    from assets.head.artifact import build_card
    from assets.head.models import fit_ridge

    _, vectors = store.read(store.shards(FIRST)[:1])
    X = vectors[:LABELS].astype(np.float32)
    rng = np.random.default_rng(seed + 1)
    direction = rng.standard_normal(X.shape[1]).astype(np.float32)
    direction /= np.linalg.norm(direction)
    y = np.clip(0.5 + 4.0 * (X @ direction) + rng.normal(0, 0.05, len(X)), 0.0, 1.0)
    net = fit_ridge(X, y).net()
    card = build_card(net, backbone={"model": store.identity.model}, head_type="ridge", seed=seed)
    head = registry.save(net, card)
    registry.activate(head.version, "bench")
    return registry.load(head.version)


def _matmul_seconds(store: EmbeddingStore, head: Head) -> tuple[float, list[float]]:
    """Three bare float32 products over the embeddings the full run scored, in memory."""
    _, vectors = store.read(store.shards(FIRST))
    X = np.empty(vectors.shape, np.float32)
    np.copyto(X, vectors)
    del vectors
    w = head.net.linears[0].weight.detach().numpy().reshape(-1).astype(np.float32)
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        X @ w
        runs.append(time.perf_counter() - started)
    return statistics.median(runs), runs


def _read_vectors_seconds(store: EmbeddingStore) -> float:
    started = time.perf_counter()
    for path in store.shards(FIRST):
        store.vectors(path)
    return time.perf_counter() - started


def _insert_seconds(root: Path, keys: list[str], seed: int) -> float:
    """Inserting one score row per key into an empty scratch catalog's `scores`, as the writer
    does (the keys taken from the run's `todo` rows in DuckDB), ranking none."""
    from assets.catalog.statements import run_script
    from assets.catalog.writer import insert_scores, open_catalog, refresh_posts

    rng = np.random.default_rng(seed + 2)
    n = len(keys)
    with open_catalog(root / "scratch.duckdb") as con:
        refresh_posts(con, _posts(keys))
        run_script(con, "catalog/unscored", {"through": -1})
        started = time.perf_counter()
        insert_scores(con, "floor", np.arange(n), rng.random(n), rng.random(n))
        return time.perf_counter() - started


def _run(
    con: duckdb.DuckDBPyConnection,
    refresh: Callable[[duckdb.DuckDBPyConnection], object],
    registry: Registry,
    head: Head,
    store: EmbeddingStore,
) -> tuple[Scored, dict[str, float]]:
    """What a scored_catalog run does to the catalog, in its order, each part timed."""
    from assets.catalog import writer

    laps: dict[str, float] = {}
    started = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal started
        now = time.perf_counter()
        laps[name], started = now - started, now

    refresh(con)
    lap("refresh")
    writer.sync_heads(con, registry)
    lap("heads")
    scored = writer.score_missing(con, head, store, CATALOG.rerank_growth)
    lap("score")
    writer.apply_retention(con, CATALOG.keep_heads)
    writer.counts(con, head.version)
    writer.score_histogram(con, head.version)
    lap("summary")
    con.execute("CHECKPOINT")  # what closing the catalog at the end of the run writes
    lap("checkpoint")
    return scored, laps


def catalog_bench(
    posts: int = 1_000_000, dim: int = 768, seed: int = 0, workdir: Path | None = None
) -> dict:
    """Seconds for a catalog run that scores `posts` posts from cached embeddings, then for
    the next one, after 1% new posts; and the bare matrix-vector product they compare with."""
    from assets.catalog.writer import apply_post_changes, counts, open_catalog, refresh_posts
    from assets.embeddings.store import EmbeddingStore
    from assets.head.registry import Registry

    rng = np.random.default_rng(seed)
    new_posts = max(1, int(round(posts * NEW_SHARE)))
    with tempfile.TemporaryDirectory(prefix="scoretag-bench-catalog-", dir=workdir) as tmp:
        root = Path(tmp)
        store = EmbeddingStore(root / "embeddings", _identity(dim)).ensure()
        keys = _image_keys(rng, posts + new_posts)
        _write_embeddings(store, keys[:posts], rng, FIRST)
        registry = Registry(root / "heads")
        head = _head(store, registry, seed)
        every = _posts(keys)
        first, new = every.head(posts), every.slice(posts)
        path = root / "catalog.duckdb"
        with open_catalog(path) as con:
            full, full_laps = _run(con, lambda c: refresh_posts(c, first), registry, head, store)
            _write_embeddings(store, keys[posts:], rng, SECOND)
            incremental, incremental_laps = _run(
                con, lambda c: apply_post_changes(c, new), registry, head, store
            )
            scored_total = counts(con, head.version)["scored"]
        read_s = _read_vectors_seconds(store)
        insert_s = _insert_seconds(root, keys[:posts], seed)
        # Before the float32 copy below, which only the comparison needs.
        peak_mb = peak_rss_mb()
        matmul_s, matmul_runs = _matmul_seconds(store, head)
    full_s, incremental_s = sum(full_laps.values()), sum(incremental_laps.values())
    score_s = full_laps["score"]
    return {
        "bench": "catalog",
        "cores": os.cpu_count(),
        "posts": posts,
        "dim": dim,
        "shard_rows": SHARD_ROWS,
        "new_posts": new_posts,
        "scored_full": full.scored,
        "scored_incremental": incremental.scored,
        "scored_total": scored_total,
        "full_seconds": round(full_s, 4),
        "full_phases": _rounded(full_laps),
        "phases": _rounded(full.phases),
        "incremental_seconds": round(incremental_s, 4),
        "incremental_phases": _rounded(incremental_laps),
        "incremental_score_phases": _rounded(incremental.phases),
        "incremental_over_full": round(incremental_s / full_s, 4),
        "rescore_per_s": round(posts / score_s, 1),
        "matmul_seconds": round(matmul_s, 6),
        "matmul_runs_s": [round(t, 6) for t in matmul_runs],
        "ratio_to_matmul": round(score_s / matmul_s, 2),
        "floors": {
            "read_vectors_seconds": round(read_s, 4),
            "insert_seconds": round(insert_s, 4),
            "floor_over_matmul": round((read_s + insert_s) / matmul_s, 2),
        },
        "peak_rss_mb": round(peak_mb, 1),
    }


def _rounded(laps: dict[str, float] | None) -> dict[str, float]:
    return {k: round(v, 3) for k, v in (laps or {}).items()}
