"""rating_pool: the stratified, append-only pool of posts people rate."""

from datetime import UTC, datetime

import dagster as dg
import polars as pl

from assets.images.assets import image_index
from assets.images.find import load_index
from assets.ingest.assets import raw_posts
from assets.ingest.paths import posts_files
from assets.normalize.assets import normalized_scores, read_scores
from assets.pool.eligible import candidates
from assets.pool.paths import pool_path, strata_path
from assets.pool.pool import empty_pool, grow, strata_table
from assets.pool.schema import POOL, read_pool
from orchestration.atomic import write_parquet
from orchestration.plots import column_schema, histogram_png, markdown_image, markdown_table
from orchestration.resources import ScoretagResource


def _counts(frame: pl.DataFrame, column: str) -> dg.MetadataValue:
    table = frame[column].value_counts(sort=True).rename({"count": "posts"})
    return markdown_table(table.to_dicts())


def _metadata(
    pool: pl.DataFrame, cands: pl.DataFrame, strata: pl.DataFrame, size: int, added: int
) -> dict:
    excluded = cands.filter(pl.col("excluded").is_not_null())
    covered = strata.filter(pl.col("pooled") >= 1).height
    plot = histogram_png(
        pool["norm_score"].to_list(),
        "norm_score of pooled posts",
        "norm_score",
        bins=10,
        value_range=(0, 1),
    )
    return {
        "dagster/row_count": pool.height,
        "target_size": size,
        "added_this_run": added,
        "rounds": int(pool["round"].max() or 0),
        "eligible": cands.height - excluded.height,
        "excluded": markdown_table(
            excluded["excluded"]
            .value_counts(sort=True)
            .rename({"excluded": "reason", "count": "posts"})
            .to_dicts()
        ),
        "strata": strata.height,
        "strata_in_pool": covered,
        "by_site": _counts(pool, "site"),
        "by_rating": _counts(pool, "rating"),
        "by_style": _counts(pool, "style"),
        "norm_score_distribution": markdown_image(plot, "norm_score of pooled posts"),
    }


@dg.asset(
    deps=[normalized_scores, raw_posts, image_index],
    group_name="labeling",
    kinds={"polars", "parquet"},
    owners=["team:curation"],
    code_version="1",
    metadata=column_schema(POOL),
)
def rating_pool(
    context: dg.AssetExecutionContext, scoretag: ScoretagResource
) -> dg.MaterializeResult:
    """Posts to rate by hand: a seeded sample stratified by site x rating x norm_score
    decile x style (minimum quota per stratum, so rare styles are present), of live, mature,
    canonical posts whose image the image index locates (a file or a tar member).
    Append-only: a new round adds posts and never drops or reshuffles earlier ones, so labels
    already given stay valid."""
    profile = scoretag.load()
    layout, settings = profile.layout, profile.settings.pool
    scores = read_scores(layout)
    index = load_index(layout, profile.settings)
    cands = candidates(posts_files(layout), scores, index, settings)
    path = pool_path(layout)
    existing = read_pool(path, layout.images) if path.is_file() else empty_pool()
    pool, new_round = grow(existing, cands, settings, datetime.now(UTC))
    if new_round:
        write_parquet(pool, path)
        context.log.info(
            f"round {new_round.number}: {new_round.added} posts from {new_round.strata} strata"
        )
    elif not path.is_file():  # no eligible post yet: the pool is empty, and says so
        write_parquet(pool, path)
    strata = strata_table(cands, pool)
    write_parquet(strata, strata_path(layout))
    added = new_round.added if new_round else 0
    return dg.MaterializeResult(
        metadata={
            **_metadata(pool, cands, strata, settings.size, added),
            "path": dg.MetadataValue.path(str(path)),
        }
    )
