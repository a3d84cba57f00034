"""scored_catalog: every post of every site with its normalized score and its aesthetic score
under the active head, in DuckDB. A run scores only the posts the active head has not scored;
activating another head makes the next run score everything under it, from cached
embeddings, keeping the older heads' scores (`[catalog] keep_heads`)."""

from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from assets.catalog.lock import CatalogBusy
from assets.catalog.refresh import refresh
from assets.catalog.writer import (
    apply_retention,
    counts,
    open_catalog,
    score_histogram,
    score_missing,
    sync_heads,
)
from assets.embeddings.assets import embeddings, store_for
from assets.embeddings.store import EmbeddingStore
from assets.head.artifact import BackboneMismatch, Head, require_backbone
from assets.head.assets import aesthetic_head
from assets.head.paths import registry
from assets.normalize.assets import normalized_scores
from orchestration.plots import histogram_png, markdown_image
from orchestration.pools import DUCKDB
from orchestration.resources import BackboneResource, ScoretagResource
from orchestration.settings import CatalogSettings


@dg.asset(
    deps=[normalized_scores, aesthetic_head, embeddings],
    group_name="catalog",
    pool=DUCKDB,
    # New posts or embeddings, or a new head, score what has no score yet; a raw file whose
    # embeddings never materialized does not hold up the others.
    automation_condition=dg.AutomationCondition.eager().without(
        ~dg.AutomationCondition.any_deps_missing()
    ),
    kinds={"duckdb"},
    owners=["team:curation"],
    code_version="1",
)
def scored_catalog(
    context: dg.AssetExecutionContext, scoretag: ScoretagResource, backbone: BackboneResource
) -> dg.MaterializeResult:
    """Posts, heads and aesthetic scores in $SCORETAG_HOME/catalog.duckdb (schema in sql/);
    query it with `scoretag query`, DuckDB's CLI or Python."""
    profile = scoretag.load()
    layout = profile.layout
    heads = registry(layout)
    store = store_for(layout, backbone)
    settings = profile.settings.catalog
    metadata: dict = {"path": dg.MetadataValue.path(str(layout.catalog))}
    with _opened(layout.catalog, settings, context) as con:
        done = refresh(con, layout, datetime.now(UTC))
        source = "every current post" if done.mode == "full" else f"{done.files} change files"
        context.log.info(
            f"posts refreshed from {source}: {done.written:,} written, {done.updated:,} "
            f"updated, {done.dropped:,} dropped"
        )
        metadata.update(
            {
                "refresh": done.mode,
                "posts_written": done.written,
                "posts_updated": done.updated,
                "posts_dropped": done.dropped,
            }
        )
        active = sync_heads(con, heads)
        if active is None:
            context.log.warning("no head is active: posts are in the catalog, without scores")
            return dg.MaterializeResult(metadata={**metadata, "active_head": "none"})
        head = heads.load(active)
        _require_backbone(head, store)
        scored = score_missing(con, head, store, settings.rerank_growth)
        apply_retention(con, settings.keep_heads)
        held = counts(con, active)
        plot = histogram_png(
            score_histogram(con, active).tolist(),
            f"aesthetic scores under head {active}",
            "score",
            bins=20,
            value_range=(0, 1),
        )
    context.log.info(
        f"head {active}: {scored.scored:,} posts scored this run"
        + (", percentiles ranked again" if scored.reranked else "")
    )
    metadata.update(
        {
            "dagster/row_count": held["posts"],
            "active_head": active,
            "scored_this_run": scored.scored,
            "scored_total": held["scored"],
            "posts_without_embedding": held["unscored"],
            "percentiles_reranked": scored.reranked,
            "heads_with_scores": held["heads_with_scores"],
            "score_distribution": markdown_image(plot, "aesthetic scores"),
        }
    )
    if head.card.get("trained_untrained_backbone"):
        metadata["quality_signal"] = "none: the active head was trained on an untrained backbone"
    return dg.MaterializeResult(metadata=metadata)


@contextmanager
def _opened(path: Path, settings: CatalogSettings, context: dg.AssetExecutionContext):
    """The catalog for writing; a run that waited out another process's lock fails saying so
    (no retry: the other run is still writing)."""
    timeout_s, memory_mb = settings.lock_timeout_s, settings.memory_mb
    try:
        with open_catalog(path, timeout_s, context.log.warning, memory_mb) as con:
            yield con
    except CatalogBusy as e:
        raise dg.Failure(description=str(e), allow_retries=False) from None


def _require_backbone(head: Head, store: EmbeddingStore) -> None:
    try:
        require_backbone(head, asdict(store.identity))
    except BackboneMismatch as e:
        raise dg.Failure(description=str(e), allow_retries=False) from None
