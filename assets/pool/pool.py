"""Growing the rating pool, one round at a time, without touching earlier rounds.

A round is drawn when the pool is smaller than its target size (raise the size to grow it).
Rows already in the pool are never dropped or reshuffled, so labels already given stay
valid; a post whose image is already in the pool (under any post) is never drawn again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from assets.pool.sample import draw, quotas
from assets.pool.schema import POOL
from orchestration.settings import PoolSettings

STRATIFIED = "stratified"


@dataclass(frozen=True)
class Round:
    number: int
    added: int
    strata: int


def strata_table(candidates: pl.DataFrame, pool: pl.DataFrame) -> pl.DataFrame:
    """Per stratum of eligible posts: total, pooled, available."""
    eligible = candidates.filter(pl.col("excluded").is_null())
    pooled_keys = pool["image_key"].implode()
    return (
        eligible.group_by("stratum")
        .agg(
            total=pl.len(),
            pooled=pl.col("post_key").is_in(pool["post_key"].implode()).sum(),
            available=(~pl.col("image_key").is_in(pooled_keys)).sum(),
        )
        .with_columns(pl.col("total", "pooled", "available").cast(pl.Int64))
        .sort("stratum")
    )


def grow(
    pool: pl.DataFrame, candidates: pl.DataFrame, settings: PoolSettings, now: datetime
) -> tuple[pl.DataFrame, Round | None]:
    """The pool with one more round appended, if one is needed; and that round."""
    strata = strata_table(candidates, pool)
    wanted = quotas(strata, settings.size - pool.height, settings.min_per_stratum)
    if wanted["quota"].sum() == 0:
        return pool, None
    number = int(pool["round"].max() or 0) + 1
    available = candidates.filter(
        pl.col("excluded").is_null() & ~pl.col("image_key").is_in(pool["image_key"].implode())
    )
    picked = draw(available, wanted, settings.seed, number).join(
        strata.select("stratum", "total"), on="stratum"
    )
    added = picked.with_columns(
        round=pl.lit(number, pl.Int32),
        round_kind=pl.lit(STRATIFIED),
        reason=pl.format(
            "stratified round {}: stratum {} ({} of {} eligible)",
            pl.lit(number),
            "stratum",
            "quota",
            "total",
        ),
        selected_at=pl.lit(now, POOL["selected_at"]),
    ).select([pl.col(c).cast(t) for c, t in POOL.items()])
    return pl.concat([pool, added]), Round(number, added.height, int(added["stratum"].n_unique()))


def empty_pool() -> pl.DataFrame:
    return pl.DataFrame(schema=POOL)
