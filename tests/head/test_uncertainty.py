"""The uncertainty round: appended after earlier rounds, spread over strata, no duplicates."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl

from assets.head.planted import planted
from assets.head.uncertainty import UNCERTAINTY, RoundSettings, add_uncertainty_round
from assets.pool.schema import POOL

NOW = datetime(2026, 11, 21, tzinfo=UTC)


def _rows(indices: np.ndarray, cluster: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "post_key": [f"danbooru:{i}" for i in indices],
            "site": "danbooru",
            "post_id": indices.astype(np.int64),
            "image_key": [f"{i:032x}" for i in indices],
            "image_path": [f"/images/{i:032x}.jpg" for i in indices],
            "image_offset": -1,  # whole files
            "image_length": -1,
            "rating": "g",
            "norm_score": 0.5,
            "decile": 5,
            "style": [f"style{c}" for c in cluster[indices]],
            "stratum": [f"danbooru/g/d5/style{c}" for c in cluster[indices]],
        }
    )


def test_an_uncertainty_round_is_appended_spread_over_strata():
    p = planted(n=3000, dim=32, clusters=6, test=100, seed=2)
    labelled = np.arange(300)
    pool = (
        _rows(labelled, p.cluster)
        .with_columns(
            round=pl.lit(1, pl.Int32),
            round_kind=pl.lit("stratified"),
            reason=pl.lit("test"),
            selected_at=pl.lit(NOW),
        )
        .cast(POOL)
    )
    rest = np.arange(300, 3000)
    grown, new_round = add_uncertainty_round(
        pool,
        _rows(rest, p.cluster),
        p.X[rest],
        p.X[labelled],
        p.labels[labelled].astype(float),
        RoundSettings(size=60, models=6, max_cosine=0.95, seed=0),
        NOW,
    )
    assert new_round is not None and new_round.number == 2 and new_round.added == 60
    assert grown.head(300).equals(pool)  # earlier rounds untouched
    added = grown.filter(pl.col("round") == 2)
    assert set(added["round_kind"]) == {UNCERTAINTY}
    assert added["reason"].str.starts_with("uncertainty round 2: ensemble std").all()
    assert grown["image_key"].n_unique() == grown.height
    assert added["stratum"].n_unique() == len(set(p.cluster[rest]))
    chosen = p.X[added["post_id"].to_numpy()]
    cosines = chosen @ chosen.T - 2 * np.eye(len(chosen))
    assert cosines.max() <= 0.95


def test_nothing_to_add_leaves_the_pool_alone():
    p = planted(n=400, dim=16, clusters=3, test=50, seed=0)
    pool = pl.DataFrame(schema=POOL)
    same, new_round = add_uncertainty_round(
        pool,
        _rows(np.array([], int), p.cluster),
        p.X[:0],
        p.X[:100],
        p.labels[:100].astype(float),
        RoundSettings(size=10),
        NOW,
    )
    assert new_round is None and same.equals(pool)
