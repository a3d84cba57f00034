"""Data-quality checks of manual_labels."""

import dagster as dg
import polars as pl

from assets.labels import pair_stats, stats
from assets.labels.assets import manual_labels, read_events, read_pair_events
from assets.labels.paths import labels_path
from assets.pool.paths import pool_path
from orchestration import quality
from orchestration.plots import markdown_table
from orchestration.resources import ScoretagResource

MIN_REPEATS = 5  # a labeler's self-consistency is judged on at least this many repeats
MIN_DECISIVE = 30  # a labeler's position bias is judged on at least this many choices


@dg.asset_check(asset=manual_labels, blocking=True)
def manual_labels_values(scoretag: ScoretagResource) -> dg.AssetCheckResult:
    """GX suite: every label is an integer from 1 to 5, every target within 1..5."""
    import great_expectations as gx

    e = gx.expectations
    latest = stats.votes(read_events(scoretag.layout))
    labels = pl.read_parquet(labels_path(scoretag.layout))
    outcomes = [
        quality.validate(
            latest.select("value"),
            [
                e.ExpectColumnValuesToBeInSet(column="value", value_set=[1, 2, 3, 4, 5]),
                e.ExpectColumnValuesToNotBeNull(column="value"),
            ],
            "labels",
        ),
        quality.validate(
            labels.select("target"),
            [e.ExpectColumnValuesToBeBetween(column="target", min_value=1, max_value=5)],
            "targets",
        ),
    ]
    return quality.check_result(outcomes, {"labels": latest.height})


@dg.asset_check(asset=manual_labels)
def manual_labels_in_pool(scoretag: ScoretagResource) -> dg.AssetCheckResult:
    """Every labeled post is in the rating pool (labels imported for other posts are kept,
    but the head has no embedding of the pool to learn them from)."""
    labels = pl.read_parquet(labels_path(scoretag.layout))
    outside = labels.filter(~pl.col("in_pool"))
    return dg.AssetCheckResult(
        passed=outside.height == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{outside.height} of {labels.height} labeled posts are not in the pool",
        metadata={
            "outside": outside.height,
            "examples": markdown_table(outside.select("post_key").head(10).to_dicts()),
        },
    )


@dg.asset_check(asset=manual_labels)
def manual_labels_coverage(scoretag: ScoretagResource) -> dg.AssetCheckResult:
    """The share of the pool that has a label, against `[labels] min_coverage`."""
    profile = scoretag.load()
    pool = pl.read_parquet(pool_path(profile.layout), columns=["post_key"])
    labels = pl.read_parquet(labels_path(profile.layout))
    covered = labels.filter("in_pool").height / pool.height if pool.height else 0.0
    minimum = profile.settings.labels.min_coverage
    return dg.AssetCheckResult(
        passed=covered >= minimum,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{covered:.1%} of the pool labeled (warns below {minimum:.0%})",
        metadata={
            "coverage": covered,
            "pool": pool.height,
            "labeled": labels.filter("in_pool").height,
        },
    )


@dg.asset_check(asset=manual_labels)
def manual_labels_self_consistency(scoretag: ScoretagResource) -> dg.AssetCheckResult:
    """Each labeler with enough hidden repeats gives the same label again often enough
    (`[labels] min_self_consistency`)."""
    profile = scoretag.load()
    table = stats.self_consistency(read_events(profile.layout))
    judged = table.filter(pl.col("repeats") >= MIN_REPEATS)
    minimum = profile.settings.labels.min_self_consistency
    low = judged.filter(pl.col("same_share") < minimum)
    return dg.AssetCheckResult(
        passed=low.height == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"{low.height} of {judged.height} labelers (with {MIN_REPEATS}+ repeats) "
            f"repeat their own label less than {minimum:.0%} of the time"
        ),
        metadata={"labelers": markdown_table(table.to_dicts()), "below": low.height},
    )


@dg.asset_check(asset=manual_labels)
def manual_labels_position_bias(scoretag: ScoretagResource) -> dg.AssetCheckResult:
    """No labeler with enough non-tie pair choices favours one side: the 95% interval of
    their share of left choices holds one half."""
    table = pair_stats.position_bias(read_pair_events(scoretag.layout))
    judged = table.filter(pl.col("labeler") != "all", pl.col("decisive") >= MIN_DECISIVE)
    biased = judged.filter("biased")
    return dg.AssetCheckResult(
        passed=biased.height == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"{biased.height} of {judged.height} labelers (with {MIN_DECISIVE}+ non-tie "
            "choices) favour one side of the pair"
        ),
        metadata={"labelers": markdown_table(table.to_dicts()), "biased": biased.height},
    )
