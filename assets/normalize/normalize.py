"""normalized_scores from the current posts: image keys, cohorts, popularity, norm_score.

norm_score = the mid-rank percentile of popularity within the post's cohort (site, rating,
upload period), against the cohort's mature, live posts. A 90th-percentile explicit e621 post
and a 90th-percentile general Danbooru post both get 0.9.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from assets.images.keys import with_image_key
from assets.ingest.current import current_posts
from assets.normalize import cohorts, images
from assets.normalize.percentile import group_codes, mid_rank
from assets.normalize.popularity import popularity
from orchestration import objectstore
from orchestration.objectstore import Location
from orchestration.settings import NormalizeSettings

INPUT = (
    "site",
    "post_id",
    "md5",
    "sha512",
    "created_at",
    "updated_at",
    "rating",
    "score",
    "up_votes",
    "down_votes",
    "favorites",
    "is_deleted",
    "source_file",
)
COHORT = ("site", "rating", "cohort")

SCHEMA: dict[str, pl.DataType] = {
    "site": pl.String,
    "post_id": pl.Int64,
    "image_key": pl.String,
    "is_canonical": pl.Boolean,
    "rating": pl.String,
    "period": pl.String,
    "cohort": pl.String,
    "snapshot_at": pl.Datetime("us", "UTC"),
    "age_days": pl.Float64,
    "immature": pl.Boolean,
    "is_deleted": pl.Boolean,
    "in_reference": pl.Boolean,
    "provisional": pl.Boolean,
    "wilson": pl.Float64,
    "popularity": pl.Float64,
    "norm_score": pl.Float64,
}


def normalize_posts(
    posts: pl.DataFrame, snapshots: pl.DataFrame, settings: NormalizeSettings
) -> pl.DataFrame:
    """Every current post with its normalized score."""
    weights = {
        "wilson": settings.weight_wilson,
        "favorites": settings.weight_favorites,
        "score": settings.weight_score,
    }
    frame = posts.join(snapshots, on="source_file", how="left")
    frame = cohorts.maturity(frame, settings.maturity_days)
    frame = cohorts.assign(frame, settings.period, settings.min_cohort_size)
    codes = group_codes(frame, COHORT)
    frame = popularity(frame, codes, "in_reference", settings.wilson_z, weights)
    frame = mid_rank(frame, "popularity", COHORT, "in_reference", "norm_score", codes)
    frame = with_image_key(frame).with_columns(provisional=~pl.col("in_reference"))
    frame = images.canonical(frame, settings.site_priority)
    return frame.select([pl.col(c).cast(t) for c, t in SCHEMA.items()]).sort("site", "post_id")


def normalize_files(files: Sequence[Location], settings: NormalizeSettings) -> pl.DataFrame:
    """Read the raw_posts files (only the columns needed) and normalize them."""
    if not files:
        return pl.DataFrame(schema=SCHEMA)
    posts = current_posts(files, INPUT)
    stamps = cohorts.snapshots(objectstore.scan_parquet(files)).collect()
    return normalize_posts(posts, stamps, settings)
