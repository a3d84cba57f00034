"""Data-quality checks of raw_posts, per partition (one raw file)."""

import dagster as dg
import polars as pl

from assets.ingest.assets import raw_files, raw_posts
from assets.ingest.coerce import MD5_PATTERN
from assets.ingest.paths import RawFile
from assets.ingest.schema import POSTS, RATINGS, REQUIRED
from orchestration import objectstore, quality
from orchestration.resources import ScoretagResource


def _aggregates(posts: pl.LazyFrame) -> pl.DataFrame:
    """Exact table-wide numbers, computed over every row without leaving polars."""
    return posts.select(
        rows=pl.len(),
        duplicate_keys=pl.len() - pl.struct("site", "post_id").n_unique(),
        **{f"null_{c}": pl.col(c).null_count() for c in REQUIRED},
        negative_votes=(pl.col("up_votes") < 0).sum() + (pl.col("down_votes") < 0).sum(),
    ).collect()


def _row_expectations(gx) -> list:
    e = gx.expectations
    return [
        *(e.ExpectColumnValuesToNotBeNull(column=c) for c in REQUIRED),
        e.ExpectColumnValuesToBeInSet(column="rating", value_set=list(RATINGS)),
        e.ExpectColumnValuesToBeBetween(column="up_votes", min_value=0),
        e.ExpectColumnValuesToBeBetween(column="down_votes", min_value=0),
        e.ExpectColumnValuesToBeBetween(column="favorites", min_value=0),
        e.ExpectColumnValuesToBeBetween(column="width", min_value=1),
        e.ExpectColumnValuesToBeBetween(column="height", min_value=1),
        e.ExpectColumnValuesToMatchRegex(column="md5", regex=MD5_PATTERN),
    ]


def _table_expectations(gx) -> list:
    e = gx.expectations
    zero = ("duplicate_keys", "negative_votes", *(f"null_{c}" for c in REQUIRED))
    return [e.ExpectColumnValuesToBeBetween(column=c, min_value=0, max_value=0) for c in zero]


@dg.asset_check(asset=raw_posts, partitions_def=raw_files, blocking=True)
def raw_posts_schema(
    context: dg.AssetCheckExecutionContext, scoretag: ScoretagResource
) -> dg.AssetCheckResult:
    """GX suite: the schema's types, required fields present, ratings in g/s/q/e, votes and
    favourites >= 0, md5 as lowercase hex, (site, post_id) unique."""
    import great_expectations as gx

    path = RawFile.from_key(context.partition_key).output(scoretag.layout, "posts")
    posts = objectstore.scan_parquet(path)
    schema = dict(posts.collect_schema())
    wrong_types = {c: str(t) for c, t in POSTS.items() if schema.get(c) != t}
    aggregates = _aggregates(posts)
    narrow = posts.select(
        *REQUIRED, "up_votes", "down_votes", "favorites", "width", "height", "md5"
    )
    outcomes = [
        quality.validate(quality.sample(narrow), _row_expectations(gx), "rows"),
        quality.validate(aggregates, _table_expectations(gx), "table"),
    ]
    result = quality.check_result(
        outcomes,
        {"rows": int(aggregates["rows"][0]), "wrong_types": dg.MetadataValue.json(wrong_types)},
    )
    if wrong_types:
        return dg.AssetCheckResult(
            passed=False,
            metadata=result.metadata,
            description=f"columns of the wrong type: {wrong_types}",
        )
    return result


@dg.asset_check(asset=raw_posts, partitions_def=raw_files)
def raw_posts_quarantine(
    context: dg.AssetCheckExecutionContext, scoretag: ScoretagResource
) -> dg.AssetCheckResult:
    """The share of the file's records that went to quarantine, against the threshold."""
    profile = scoretag.load()
    raw = RawFile.from_key(context.partition_key)
    posts_file = objectstore.scan_parquet(raw.output(profile.layout, "posts"))
    posts = posts_file.select(pl.len()).collect().item()
    quarantined = objectstore.read_parquet(raw.output(profile.layout, "quarantine"))
    total = posts + quarantined.height
    share = quarantined.height / total if total else 0.0
    threshold = profile.settings.ingest.quarantine_threshold
    return dg.AssetCheckResult(
        passed=share <= threshold,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{quarantined.height} of {total} records quarantined ({share:.2%}); "
        f"threshold {threshold:.2%}",
        metadata={
            "quarantined": quarantined.height,
            "records": total,
            "share": share,
            "threshold": threshold,
        },
    )
