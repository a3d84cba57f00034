"""The `uncertainty` round of the rating pool: the eligible posts on which a bootstrap ensemble
of heads disagrees most, spread across strata, never a near-duplicate (by embedding cosine)
of each other or of a post already labelled. Appended to the pool like any round: earlier
rows never change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl

from assets.head.active import uncertainty_round
from assets.head.models import to_target
from assets.pool.pool import Round
from assets.pool.schema import POOL

UNCERTAINTY = "uncertainty"


@dataclass(frozen=True)
class RoundSettings:
    size: int = 500
    models: int = 8
    max_cosine: float = 0.95
    seed: int = 0


def add_uncertainty_round(
    pool: pl.DataFrame,
    available: pl.DataFrame,
    X_available: np.ndarray,
    X_labelled: np.ndarray,
    labels: np.ndarray,
    settings: RoundSettings,
    now: datetime,
) -> tuple[pl.DataFrame, Round | None]:
    """`available`: eligible posts not in the pool (POOL columns up to `stratum`), one row per
    row of `X_available`; `X_labelled`, `labels`: what the ensemble learns from."""
    if available.height == 0 or settings.size == 0:
        return pool, None
    picked, spread = uncertainty_round(
        X_labelled,
        to_target(labels),
        X_available,
        available["stratum"].to_numpy(),
        min(settings.size, available.height),
        models=settings.models,
        max_cosine=settings.max_cosine,
        seed=settings.seed,
    )
    if len(picked) == 0:
        return pool, None
    number = int(pool["round"].max() or 0) + 1
    added = (
        available[picked]
        .with_columns(
            round=pl.lit(number, pl.Int32),
            round_kind=pl.lit(UNCERTAINTY),
            reason=pl.format(
                "uncertainty round {}: ensemble std {} ({} heads)",
                pl.lit(number),
                pl.Series(np.round(spread * 4, 4)),  # on the 1-5 scale
                pl.lit(settings.models),
            ),
            selected_at=pl.lit(now, POOL["selected_at"]),
        )
        .select([pl.col(c).cast(t) for c, t in POOL.items()])
    )
    strata = int(added["stratum"].n_unique())
    return pl.concat([pool, added]), Round(number, added.height, strata)
