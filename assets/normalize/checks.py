"""Data-quality checks of normalized_scores."""

import dagster as dg
import numpy as np
import polars as pl

from assets.normalize.assets import normalized_scores, read_scores, scan_scores
from orchestration import quality
from orchestration.plots import markdown_table
from orchestration.resources import ScoretagResource

UNIFORM_MIN_POSTS = 100
UNIFORM_WARN, UNIFORM_FAIL = 0.10, 0.20  # Kolmogorov-Smirnov distance to uniform


def uniformity(frame: pl.DataFrame) -> pl.DataFrame:
    """Per mature (site, rating) cohort of at least UNIFORM_MIN_POSTS reference posts: the
    Kolmogorov-Smirnov distance between its norm_scores and the uniform distribution, and
    the part of it that ties do not explain. Posts with equal popularity share one
    mid-rank percentile, so a tie holding a share t of a cohort moves its distribution by
    t / 2 however right the percentiles are (Gelbooru's bare scores tie often)."""
    rows = []
    reference = frame.filter(pl.col("in_reference"))
    for (site, rating), group in reference.group_by("site", "rating"):
        scores = np.sort(group["norm_score"].to_numpy())
        n = len(scores)
        if n < UNIFORM_MIN_POSTS:
            continue
        ecdf_hi = np.arange(1, n + 1) / n
        ks = float(max(np.max(ecdf_hi - scores), np.max(scores - (ecdf_hi - 1 / n))))
        largest_tie = float(np.unique(scores, return_counts=True)[1].max()) / n
        rows.append(
            {
                "site": site,
                "rating": rating,
                "posts": n,
                "ks": ks,
                "largest_tie": largest_tie,
                "ks_beyond_ties": max(0.0, ks - largest_tie / 2),
            }
        )
    schema = {
        "site": pl.String,
        "rating": pl.String,
        "posts": pl.Int64,
        "ks": pl.Float64,
        "largest_tie": pl.Float64,
        "ks_beyond_ties": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema).sort("site", "rating")


@dg.asset_check(asset=normalized_scores, blocking=True)
def normalized_scores_suite(scoretag: ScoretagResource) -> dg.AssetCheckResult:
    """GX suite: norm_score and popularity in [0, 1]; norm_score present for every reference
    post (a provisional post whose cohort has no mature posts yet has none); one row per
    post; every post has an image_key, and every image exactly one canonical post."""
    import great_expectations as gx

    e = gx.expectations
    scores = scan_scores(scoretag.layout)
    table = scores.select(
        duplicate_posts=pl.len() - pl.struct("site", "post_id").n_unique(),
        images_without_one_canonical=(
            pl.col("is_canonical").cast(pl.Int64).sum().over("image_key") != 1
        ).sum(),
    ).collect()
    rows = quality.sample(scores.select("norm_score", "popularity", "image_key", "rating"))
    reference = quality.sample(scores.filter(pl.col("in_reference")).select("norm_score"))
    outcomes = [
        quality.validate(
            reference, [e.ExpectColumnValuesToNotBeNull(column="norm_score")], "reference rows"
        ),
        quality.validate(
            rows,
            [
                e.ExpectColumnValuesToBeBetween(column="norm_score", min_value=0, max_value=1),
                e.ExpectColumnValuesToBeBetween(column="popularity", min_value=0, max_value=1),
                e.ExpectColumnValuesToNotBeNull(column="image_key"),
            ],
            "rows",
        ),
        quality.validate(
            table,
            [
                e.ExpectColumnValuesToBeBetween(column=c, min_value=0, max_value=0)
                for c in table.columns
            ],
            "table",
        ),
    ]
    return quality.check_result(outcomes)


@dg.asset_check(asset=normalized_scores, blocking=True)
def norm_score_uniform(scoretag: ScoretagResource) -> dg.AssetCheckResult:
    """Within each mature (site, rating) cohort of 100+ posts, norm_score is roughly uniform
    (a percentile should be): warns when its KS distance, beyond what ties explain, passes
    0.10, fails past 0.20."""
    import great_expectations as gx

    stats = uniformity(
        read_scores(scoretag.layout, ["site", "rating", "in_reference", "norm_score"])
    )
    worst = float(stats["ks_beyond_ties"].max()) if stats.height else 0.0
    expectation = gx.expectations.ExpectColumnValuesToBeBetween(
        column="ks_beyond_ties", min_value=0, max_value=UNIFORM_WARN
    )
    passed = quality.validate(stats, [expectation], "uniform").success if stats.height else True
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR
        if worst > UNIFORM_FAIL
        else dg.AssetCheckSeverity.WARN,
        description=(
            f"{stats.height} cohorts tested; worst KS distance beyond ties "
            f"{worst:.3f} (warn > {UNIFORM_WARN}, fail > {UNIFORM_FAIL})"
        ),
        metadata={
            "cohorts": markdown_table(stats.to_dicts()),
            "worst_ks_beyond_ties": worst,
            "cohorts_tested": stats.height,
        },
    )
