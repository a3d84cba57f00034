"""Data-quality checks of rating_pool."""

from pathlib import Path

import dagster as dg
import polars as pl

from assets.pool.assets import rating_pool
from assets.pool.paths import pool_path, strata_path
from assets.pool.schema import read_pool
from orchestration import quality
from orchestration.plots import markdown_table
from orchestration.resources import ScoretagResource


@dg.asset_check(asset=rating_pool, blocking=True)
def rating_pool_unique(scoretag: ScoretagResource) -> dg.AssetCheckResult:
    """GX suite: no post and no image twice in the pool; every row has its key, image and
    stratum."""
    import great_expectations as gx

    e = gx.expectations
    pool = pl.read_parquet(pool_path(scoretag.layout))
    outcome = quality.validate(
        pool.select("post_key", "image_key", "image_path", "stratum"),
        [
            e.ExpectColumnValuesToBeUnique(column="post_key"),
            e.ExpectColumnValuesToBeUnique(column="image_key"),
            *(
                e.ExpectColumnValuesToNotBeNull(column=c)
                for c in ("post_key", "image_key", "image_path", "stratum")
            ),
        ],
        "pool",
    )
    return quality.check_result([outcome], {"rows": pool.height})


@dg.asset_check(asset=rating_pool)
def rating_pool_size_and_coverage(scoretag: ScoretagResource) -> dg.AssetCheckResult:
    """The pool has the size asked for (or every eligible post, if fewer), and every stratum
    with eligible posts has its minimum quota, unless the minimums alone need more posts
    than the pool's size (then the rarest strata have theirs)."""
    profile = scoretag.load()
    settings, layout = profile.settings.pool, profile.layout
    pool, strata = pl.read_parquet(pool_path(layout)), pl.read_parquet(strata_path(layout))
    wanted = min(settings.size, int(strata["total"].sum()))
    minimum = strata.with_columns(
        needed=pl.min_horizontal(pl.lit(settings.min_per_stratum), "total")
    )
    short = minimum.filter(pl.col("pooled") < pl.col("needed"))
    feasible = int(minimum["needed"].sum()) <= settings.size
    passed = pool.height >= wanted and (short.height == 0 or not feasible)
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"{pool.height} posts for a target of {settings.size} ({wanted} "
            f"possible); {short.height} of {strata.height} strata below their minimum"
            + ("" if feasible else " (the minimums alone exceed the pool's size)")
        ),
        metadata={
            "pool": pool.height,
            "target": settings.size,
            "strata": strata.height,
            "strata_short": short.height,
            "short": markdown_table(short.head(20).to_dicts()),
        },
    )


@dg.asset_check(asset=rating_pool, blocking=True)
def rating_pool_images_exist(scoretag: ScoretagResource) -> dg.AssetCheckResult:
    """Every pooled post's image is where the pool says: its file, or its tar shard holding
    the member's byte range."""
    layout = scoretag.layout
    pool = read_pool(pool_path(layout), layout.images)
    # A stat per pooled image (thousands), not a walk of the image root (millions).
    missing = pool.select("post_key", "image_path", "image_offset", "image_length").filter(
        ~pl.Series(
            [
                _holds(path, offset, length)
                for path, offset, length in pool.select(
                    "image_path", "image_offset", "image_length"
                ).iter_rows()
            ],
            dtype=pl.Boolean,
        )
    )
    return dg.AssetCheckResult(
        passed=missing.height == 0,
        description=f"{missing.height} of {pool.height} pooled images are missing",
        metadata={
            "missing": missing.height,
            "examples": markdown_table(missing.head(10).to_dicts()),
        },
    )


def _holds(path: str, offset: int, length: int) -> bool:
    try:
        size = Path(path).stat().st_size
    except OSError:
        return False
    return offset < 0 or offset + length <= size
