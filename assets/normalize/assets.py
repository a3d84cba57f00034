"""normalized_scores: one row per current post with its per-site, per-cohort norm_score."""

import dagster as dg
import polars as pl

from assets.ingest.assets import raw_posts
from assets.ingest.paths import posts_files
from assets.normalize import store
from assets.normalize.normalize import SCHEMA, Outcome, update
from orchestration import objectstore
from orchestration.objectstore import Location
from orchestration.plots import column_schema, histogram_png, markdown_image, markdown_table
from orchestration.resources import ScoretagResource
from orchestration.settings import NormalizeSettings
from orchestration.storage import Layout

STAGE = "normalized_scores"
# Columns the summary reads; the parts hold the inputs too.
SUMMARY = ["site", "rating", "cohort", "image_key", "in_reference", "provisional", "norm_score"]


def scores_root(layout: Layout) -> Location:
    """Under the object root when the profile has one (it grows with the posts), else under
    the storage root (see store.py for what is in it)."""
    return layout.shared_stage_dir(STAGE)


def read_scores(layout: Layout, columns: list[str] | None = None) -> pl.DataFrame:
    """Every post's normalized score (only `columns`, if given)."""
    return store.read_scores(scores_root(layout), columns)


def scan_scores(layout: Layout) -> pl.LazyFrame:
    return store.scan_scores(scores_root(layout))


def formula(settings: NormalizeSettings) -> str:
    return (
        "popularity = weighted mean of percentiles within the cohort of: Wilson lower bound of "
        f"up/(up+down) (z = {settings.wilson_z}, weight {settings.weight_wilson}), favorites "
        f"(weight {settings.weight_favorites}), net score (weight {settings.weight_score}); "
        "components a site lacks are left out (Gelbooru: score only).\n\n"
        "norm_score = mid-rank percentile of popularity within (site, rating, upload period "
        f"{settings.period}), against the cohort's posts that are live and at least "
        f"{settings.maturity_days} days old when their file was taken; periods with fewer than "
        f"{settings.min_cohort_size} such posts are pooled per (site, rating). Younger and "
        "deleted posts are placed against that reference and marked provisional."
    )


def _summary(frame: pl.DataFrame) -> dict:
    reference = frame.filter(pl.col("in_reference"))
    deciles = [
        {"decile": f"p{q * 10:.0f}", "norm_score": frame["norm_score"].quantile(q)}
        for q in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    ]
    per_site = (
        frame.group_by("site")
        .agg(
            posts=pl.len(),
            provisional=pl.col("provisional").sum(),
            images=pl.col("image_key").n_unique(),
        )
        .sort("site")
    )
    by_site = {
        site: reference.filter(pl.col("site") == site)["norm_score"].to_list()
        for site in sorted(set(reference["site"]))
    }
    plot = histogram_png(
        by_site, "norm_score of mature posts, per site", "norm_score", bins=10, value_range=(0, 1)
    )
    return {
        "dagster/row_count": frame.height,
        "provisional": int(frame["provisional"].sum()),
        "images": frame["image_key"].n_unique(),
        "shared_images": frame.group_by("image_key").len().filter(pl.col("len") > 1).height,
        "cohorts": frame.select("site", "rating", "cohort").n_unique(),
        "norm_score_deciles": markdown_table(deciles),
        "per_site": markdown_table(per_site.to_dicts()),
        "norm_score_distribution": markdown_image(plot, "norm_score histogram"),
    }


@dg.asset(
    deps=[raw_posts],
    group_name="ingest",
    # Runs when any raw file is (re)ingested, even while another file's partition has never
    # materialized (a refused file must not hold up every other one).
    automation_condition=dg.AutomationCondition.eager().without(
        ~dg.AutomationCondition.any_deps_missing()
    ),
    kinds={"polars", "parquet"},
    owners=["team:curation"],
    code_version="1",
    metadata=column_schema(SCHEMA),
)
def normalized_scores(
    context: dg.AssetExecutionContext, scoretag: ScoretagResource
) -> dg.MaterializeResult:
    """Booru popularity made comparable: per post, the percentile of its popularity among
    mature posts of the same site, rating and upload period (norm_score in [0, 1]), its
    image_key (the same file on several sites) and which post is the image's canonical one."""
    profile = scoretag.load()
    settings = profile.settings.normalize
    files = posts_files(profile.layout)
    root = scores_root(profile.layout)
    scratch = profile.layout.stage_dir(STAGE) / "scratch"
    outcome = update(root, files, settings, scratch)
    context.log.info(
        f"{outcome.mode} ({outcome.reason}): {outcome.rows:,} posts of {outcome.groups:,} "
        f"groups scored, {outcome.parts_written} parts written, changes {outcome.changes}"
    )
    # A run that changed little summarizes what it wrote; the whole table only after a
    # full run (reading every post would cost more than the run).
    summary = _summary(store.read_scores(root, SUMMARY)) if outcome.mode == "full" else {}
    return dg.MaterializeResult(
        metadata={
            **summary,
            **_outcome_metadata(outcome, root),
            "formula": dg.MetadataValue.md(formula(settings)),
            "raw_files": len(files),
            "path": dg.MetadataValue.path(str(root)),
        }
    )


def _outcome_metadata(outcome: Outcome, root: Location) -> dict:
    parts = store.part_files(root)
    return {
        "dagster/row_count": objectstore.parquet_rows(parts) if parts else 0,
        "run_mode": outcome.mode,
        "run_reason": outcome.reason,
        "groups_scored": outcome.groups,
        "posts_scored": outcome.rows,
        "parts_written": outcome.parts_written,
        "parts": len(parts),
        "changes": dg.MetadataValue.json(outcome.changes),
        "phase_seconds": dg.MetadataValue.json(outcome.phases),
    }
