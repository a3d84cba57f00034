"""manual_labels: the label store, resolved to one training target per post, and its pair
judgments to one choice per labeler and pair."""

import dagster as dg
import polars as pl

from assets.labels import pair_stats, stats
from assets.labels.pairs import resolve_pairs
from assets.labels.paths import labels_path, pairs_path
from assets.labels.resolve import LABELS, resolve
from assets.labels.store import EVENTS, PAIR_EVENTS, LabelStore
from assets.pool.assets import rating_pool
from assets.pool.paths import pool_path
from orchestration.atomic import write_parquet
from orchestration.plots import column_schema, histogram_png, markdown_image, markdown_table
from orchestration.resources import ScoretagResource
from orchestration.storage import Layout

SIMULATED = "simulated"


def read_events(layout: Layout) -> pl.DataFrame:
    """Every event of the label store (none if no one has labeled yet)."""
    if not layout.label_store.is_file():
        return pl.DataFrame(schema=EVENTS)
    with LabelStore(layout.label_store, read_only=True) as store:
        return store.events()


def read_pair_events(layout: Layout) -> pl.DataFrame:
    """Every pair event of the label store (none before compare mode was used)."""
    if not layout.label_store.is_file():
        return pl.DataFrame(schema=PAIR_EVENTS)
    with LabelStore(layout.label_store, read_only=True) as store:
        return store.pair_events()


def _pair_metadata(pairs: pl.DataFrame, events: pl.DataFrame) -> dict:
    bias = pair_stats.position_bias(events)
    overall = bias.filter(labeler="all").row(0, named=True)
    return {
        "pairs": pairs.height,
        "pair_events": events.height,
        "pairs_not_in_pool": pairs.filter(~pl.col("in_pool")).height,
        "pairs_per_outcome": _table(pairs["outcome"].value_counts().sort("outcome")),
        "pairs_per_labeler": _table(pair_stats.per_labeler(events)),
        "pair_agreement": _table(pair_stats.agreement(events)),
        "pair_self_consistency": _table(pair_stats.self_consistency(events)),
        "position_bias": _table(bias),
        "left_share": overall["left_share"] if overall["left_share"] is not None else 0.0,
    }


def _table(frame: pl.DataFrame) -> dg.MetadataValue:
    return markdown_table(frame.to_dicts())


def _metadata(labels: pl.DataFrame, events: pl.DataFrame, pool: pl.DataFrame) -> dict:
    latest = stats.votes(events)
    plot = histogram_png(
        latest["value"].to_list(), "labels given", "label", bins=5, value_range=(0.5, 5.5)
    )
    simulated = sorted({n for n in latest["labeler"].unique() if n.startswith(SIMULATED)})
    return {
        "dagster/row_count": labels.height,
        "labels": latest.height,
        "events": events.height,
        "last_event_id": int(events["id"].max() or 0),
        "pool_coverage": labels.filter("in_pool").height / pool.height if pool.height else 0.0,
        "not_in_pool": labels.filter(~pl.col("in_pool")).height,
        "per_value": _table(latest["value"].value_counts().sort("value")),
        "per_site": _table(labels["site"].value_counts(sort=True)),
        "per_labeler": _table(stats.per_labeler(events)),
        "self_consistency": _table(stats.self_consistency(events)),
        "agreement": _table(stats.agreement(events)),
        "simulated_labelers": ", ".join(simulated) or "none",
        "label_distribution": markdown_image(plot, "label distribution"),
    }


@dg.asset(
    deps=[rating_pool],
    group_name="labeling",
    kinds={"sqlite", "parquet"},
    owners=["team:curation"],
    code_version="1",
    metadata=column_schema(LABELS),
)
def manual_labels(
    context: dg.AssetExecutionContext, scoretag: ScoretagResource
) -> dg.MaterializeResult:
    """The 1-5 quality labels people gave in the labeling app (`scoretag label serve`) or
    imported, resolved per post: each labeler's latest label (undone ones and skips left
    out), averaged over labelers. Labels of simulated labelers (the demo's) say so by name.
    Beside it, pairs.parquet: each labeler's latest choice of each pair compared in the app's
    compare mode (assets/labels/pairs.py: PAIRS)."""
    layout = scoretag.layout
    events = read_events(layout)
    pool = pl.read_parquet(pool_path(layout))
    labels = resolve(events, pool)
    path = write_parquet(labels, labels_path(layout))
    pair_events = read_pair_events(layout)
    pairs = resolve_pairs(pair_events, pool["post_key"].to_list())
    pairs_file = write_parquet(pairs, pairs_path(layout))
    context.log.info(
        f"{labels.height} labeled posts from {events.height} events; "
        f"{pairs.height} judged pairs from {pair_events.height} pair events"
    )
    return dg.MaterializeResult(
        metadata={
            **_metadata(labels, events, pool),
            **_pair_metadata(pairs, pair_events),
            "path": dg.MetadataValue.path(str(path)),
            "pairs_path": dg.MetadataValue.path(str(pairs_file)),
        }
    )
