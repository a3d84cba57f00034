"""Checks of each evaluation set: its scores sound and complete (GX suite), and whether it is
large enough for its comparisons to say anything."""

import json

import dagster as dg
import polars as pl

from assets.evaluation.assets import evaluation_sets, image_evaluations
from assets.evaluation.paths import results_dir
from assets.evaluation.scoring import SCORED
from assets.evaluation.sets import PROBLEMS
from orchestration import quality
from orchestration.atomic import read_parquet_or_empty
from orchestration.resources import ScoretagResource


def _results(scoretag: ScoretagResource, name: str) -> tuple[dict, pl.DataFrame, pl.DataFrame]:
    out = results_dir(scoretag.layout, name)
    summary = json.loads((out / "summary.json").read_text())
    scores = read_parquet_or_empty(out / "scores.parquet", SCORED)
    failures = read_parquet_or_empty(out / "failures.parquet", PROBLEMS)
    return summary, scores, failures


@dg.asset_check(asset=image_evaluations, partitions_def=evaluation_sets, blocking=True)
def image_evaluations_scores(
    context: dg.AssetCheckExecutionContext, scoretag: ScoretagResource
) -> dg.AssetCheckResult:
    """GX suite over the set's scores: each in [0, 1], its bucket in 1..9, one row per image
    and head, every head scoring every scored image; and every image found either scored or
    listed among the failures with its reason."""
    import great_expectations as gx

    e = gx.expectations
    summary, scores, failures = _results(scoretag, context.partition_key)
    heads = max(len(summary["heads"]), 1)
    failed = failures.filter(pl.col("reason") != "bad_prompt").height
    counts = pl.DataFrame(
        {
            "found": [summary["found"]],
            "accounted": [summary["scored"] + failed],
            "score_rows": [scores.height],
            "expected_rows": [summary["scored"] * heads],
        }
    )
    outcomes = [
        quality.validate(
            quality.sample(scores.lazy()),
            [
                e.ExpectColumnValuesToNotBeNull(column="score"),
                e.ExpectColumnValuesToBeBetween(column="score", min_value=0, max_value=1),
                e.ExpectColumnValuesToBeBetween(column="bucket", min_value=1, max_value=9),
                e.ExpectCompoundColumnsToBeUnique(column_list=["source", "head"]),
            ],
            "scores",
        ),
        quality.validate(
            failures,
            [e.ExpectColumnValuesToNotBeNull(column="reason")],
            "failures",
        ),
        quality.validate(
            counts,
            [
                e.ExpectColumnPairValuesToBeEqual(column_A="found", column_B="accounted"),
                e.ExpectColumnPairValuesToBeEqual(column_A="score_rows", column_B="expected_rows"),
            ],
            "every image scored or failed",
        ),
    ]
    return quality.check_result(
        outcomes,
        {"found": summary["found"], "scored": summary["scored"], "failed": failed},
    )


@dg.asset_check(asset=image_evaluations, partitions_def=evaluation_sets)
def image_evaluations_resolution(
    context: dg.AssetCheckExecutionContext, scoretag: ScoretagResource
) -> dg.AssetCheckResult:
    """Warns when the set is too small to tell sets apart: compared with earlier sets, no
    difference's interval excludes zero; compared with none, its mean score's interval is
    wider than `[evaluation] resolution` on each side."""
    summary, _, _ = _results(scoretag, context.partition_key)
    comparison = summary.get("comparison") or {}
    differences = comparison.get("differences") or []
    resolution = summary.get("resolution")
    limit = scoretag.settings.evaluation.resolution
    scored = summary["scored"]
    if differences:
        shown = sum(bool(d["excludes_zero"]) for d in differences)
        passed = shown > 0
        description = (
            f"{shown} of {len(differences)} differences from earlier sets exclude zero"
            if passed
            else f"none of the {len(differences)} differences from earlier sets excludes zero: "
            f"with {scored} images the sets cannot be told apart; add images (or prompts) "
            f"to each set"
        )
    else:
        passed = resolution is not None and resolution <= limit
        description = (
            f"the mean score is known to ±{resolution:.4f} with {scored} images "
            f"(resolution asked: ±{limit})"
            if resolution is not None
            else "no image scored"
        )
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={
            "scored": scored,
            "differences": len(differences),
            "mean_score_half_width": float(resolution) if resolution is not None else -1.0,
        },
    )
