"""aesthetic_head trained from manual_labels' pairs.parquet: pair-only posts joined to their
embeddings through the pool, pair counts and held-out pair accuracy in the metadata and the
card."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from assets.embeddings.store import EmbeddingStore
from assets.head.paths import registry
from assets.head.planted import planted
from assets.labels.pairs import PAIRS
from assets.labels.paths import labels_path, pairs_path
from assets.pool.paths import pool_path
from tests.head.test_assets import _home, _materialize, _tiny

RATED, ALL = 600, 900


def _pairs(quality: np.ndarray, n: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, ALL, n), rng.integers(0, ALL, n)
    a, b = a[a != b], b[a != b]
    gap = quality[a] - quality[b] + rng.normal(0, 0.5, len(a))
    outcome = np.where(np.abs(gap) < 0.2, "tie", np.where(gap > 0, "left", "right"))
    left = [f"danbooru:{i}" for i in a]
    right = [f"danbooru:{i}" for i in b]
    winner = [{"left": x, "right": y}.get(o) for x, y, o in zip(left, right, outcome, strict=True)]
    return pl.DataFrame(
        {
            "left_key": left,
            "right_key": right,
            "outcome": outcome.tolist(),
            "winner_key": winner,
            "labeler": rng.choice(["ann", "bob", "cy"], len(a)).tolist(),
            "judgments": [1] * len(a),
            "created_at": ["2026-12-03T12:00:00+00:00"] * len(a),
            "in_pool": [True] * len(a),
        },
        schema=PAIRS,
    )


@pytest.fixture(scope="module")
def world():
    return planted(n=ALL, dim=64, clusters=6, test=100, seed=1)


def _home_with_pairs(tmp_path, world, pairs: pl.DataFrame | None):
    """Ratings of the first RATED posts (five without an embedding, as test_assets has it);
    the rest are in the pool and embedded, and seen only in pairs."""
    layout = _home(tmp_path, world.labels[:RATED], world.X[:RATED])
    keys = [f"{i:032x}" for i in range(ALL)]
    store = EmbeddingStore(layout.stage_dir("embeddings"), _tiny())
    store.write_shard("danbooru/pairs.json", keys[RATED:], world.X[RATED:].astype(np.float16))
    pl.DataFrame(
        {
            "post_key": [f"danbooru:{i}" for i in range(ALL)],
            "site": ["danbooru"] * ALL,
            "image_key": keys,
            "rating": ["g", "s", "q", "e"] * (ALL // 4),
        }
    ).write_parquet(pool_path(layout))
    if pairs is not None:
        pairs.write_parquet(pairs_path(layout))
    return layout


def test_the_head_trains_from_pairs_and_reports_pair_accuracy(tmp_path, world):
    pairs = _pairs(world.quality, 2500)
    layout = _home_with_pairs(tmp_path, world, pairs)
    config = tmp_path / "pairs.toml"
    config.write_text(
        "[head]\nhead_type = 'ridge'\ntrain_on = 'pairs'\nmin_spearman = 0.3\nridge_margin = 0.05\n"
    )
    result = _materialize(layout, config)
    assert result.success
    (mat,) = result.asset_materializations_for_node("aesthetic_head")
    meta = {k: v.value for k, v in mat.metadata.items()}
    assert meta["train_on"] == "pairs" and meta["pairs"] == pairs.height
    # posts 595..599 are rated but have no embedding: their pairs are left out and counted
    assert meta["pairs_without_embedding"] > 0
    assert meta["pairs_used"] + meta["pairs_without_embedding"] == pairs.height
    seen = set(pairs["left_key"]) | set(pairs["right_key"])
    assert meta["pair_only_posts"] == sum(f"danbooru:{i}" in seen for i in range(RATED, ALL))
    assert meta["pairs_held_out"] + meta["pairs_across_folds"] == meta["pairs_used"]
    print(
        f"held-out pair accuracy {meta['head_pair_accuracy']:.3f} on {meta['pairs_held_out']}"
        f" pairs; Spearman on ratings {meta['cv_spearman']:.3f}"
    )
    assert meta["head_pair_accuracy"] > 0.75 and meta["gate_passed"]
    assert "pair_accuracy" in meta["metrics"] and "constant" in meta["pair_accuracy"]
    card = registry(layout).load(meta["version"]).card
    section = card["pairs"]
    assert section["pairs"] == meta["pairs_used"]
    assert set(section["labelers"]) == {"ann", "bob", "cy"}
    assert section["accuracy"]["head"]["pair_accuracy"] == meta["head_pair_accuracy"]
    assert section["accuracy"]["constant"]["pair_accuracy"] == 0.5
    assert card["metrics"]["cv"]["ridge"]["pairs"]["pairs"] > 0
    assert card["hyperparameters"]["train_on"] == "pairs"


def test_no_pairs_file_means_no_pairs(tmp_path, world):
    layout = _home_with_pairs(tmp_path, world, None)
    config = tmp_path / "ratings.toml"
    config.write_text("[head]\nhead_type = 'ridge'\nmin_spearman = 0.3\nridge_margin = 0.05\n")
    result = _materialize(layout, config)
    assert result.success
    (mat,) = result.asset_materializations_for_node("aesthetic_head")
    meta = {k: v.value for k, v in mat.metadata.items()}
    assert meta["train_on"] == "ratings" and "pairs" not in meta
    card = registry(layout).load(meta["version"]).card
    assert "pairs" not in card and "pairs" not in card["metrics"]["cv"]["head"]


def test_pairs_alone_without_ratings_train_a_head(tmp_path, world):
    layout = _home_with_pairs(tmp_path, world, _pairs(world.quality, 2500))
    labels_path(layout).unlink()
    config = tmp_path / "pairs.toml"
    config.write_text("[head]\nhead_type = 'ridge'\ntrain_on = 'pairs'\n")
    result = _materialize(layout, config)
    (mat,) = result.asset_materializations_for_node("aesthetic_head")
    meta = {k: v.value for k, v in mat.metadata.items()}
    assert meta["labels_used"] == 0 and meta["pair_only_posts"] > 850
    assert meta["head_pair_accuracy"] > 0.75
    # The gate is on the ratings' Spearman, undefined without ratings: the head is kept out.
    assert not meta["gate_passed"]
