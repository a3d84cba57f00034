"""The `pool_uncertainty` job: appends an uncertainty round to the rating pool (see
uncertainty.py) and records it as a new materialization of rating_pool.

A job, not an asset: the round depends on labels and embeddings, which depend on the pool,
so as an asset it would close a cycle in the graph."""

from datetime import UTC, datetime

import dagster as dg
import numpy as np
import polars as pl

from assets.embeddings.assets import store_for
from assets.head.uncertainty import UNCERTAINTY, RoundSettings, add_uncertainty_round
from assets.images.find import load_index
from assets.ingest.paths import posts_files
from assets.labels.paths import labels_path
from assets.normalize.assets import read_scores
from assets.pool.eligible import candidates
from assets.pool.paths import pool_path
from assets.pool.schema import POOL, read_pool
from orchestration.atomic import write_parquet
from orchestration.plots import markdown_table
from orchestration.resources import BackboneResource, ScoretagResource
from orchestration.settings import HeadSettings

JOB = "pool_uncertainty"
CANDIDATE_COLUMNS = list(POOL)[: list(POOL).index("stratum") + 1]


class UncertaintyRoundConfig(dg.Config):
    """How many posts the round adds, and how it chooses them (unset: the profile's [head]
    round_size, round_models, near_duplicate_cosine and seed)."""

    size: int | None = None
    models: int | None = None  # bootstrap heads in the ensemble
    max_cosine: float | None = None  # closer to a chosen or labelled post: a near-duplicate
    seed: int | None = None

    def settings(self, head: HeadSettings) -> RoundSettings:
        return RoundSettings(
            size=head.round_size if self.size is None else self.size,
            models=head.round_models if self.models is None else self.models,
            max_cosine=head.near_duplicate_cosine if self.max_cosine is None else self.max_cosine,
            seed=head.seed if self.seed is None else self.seed,
        )


def _vectors(store, frame: pl.DataFrame) -> tuple[pl.DataFrame, np.ndarray]:
    """The rows of `frame` whose image has an embedding, and those embeddings (same order)."""
    keys, vectors = store.lookup(frame["image_key"])
    index = pl.DataFrame({"image_key": keys}).with_row_index("row")
    found = frame.join(index, on="image_key", how="inner", maintain_order="left")
    return found.drop("row"), np.asarray(vectors[found["row"].to_numpy()], np.float32)


@dg.op
def add_uncertainty_round_op(
    context: dg.OpExecutionContext,
    config: UncertaintyRoundConfig,
    scoretag: ScoretagResource,
    backbone: BackboneResource,
) -> None:
    profile = scoretag.load()
    layout = profile.layout
    pool = read_pool(pool_path(layout), layout.images)
    labels = pl.read_parquet(labels_path(layout))
    cands = candidates(
        posts_files(layout),
        read_scores(layout),
        load_index(layout, profile.settings),
        profile.settings.pool,
    )
    available = (
        cands.filter(
            pl.col("excluded").is_null() & ~pl.col("image_key").is_in(pool["image_key"].implode())
        )
        .unique("image_key", keep="first", maintain_order=True)
        .select(CANDIDATE_COLUMNS)
    )
    store = store_for(layout, backbone)
    available, X_available = _vectors(store, available)
    labelled, X_labelled = _vectors(store, labels)
    needed = profile.settings.head.min_labels
    if labelled.height < needed:
        raise dg.Failure(
            f"{labelled.height} labelled posts have embeddings; an uncertainty round learns "
            f"from at least {needed} ([head] min_labels): label more, or embed their images"
        )
    settings = config.settings(profile.settings.head)
    grown, new_round = add_uncertainty_round(
        pool,
        available,
        X_available,
        X_labelled,
        labelled["target"].to_numpy(),
        settings,
        datetime.now(UTC),
    )
    if new_round is None:
        context.log.info(
            f"nothing to add: {available.height} eligible, embedded posts outside the pool, "
            f"none further than cosine {settings.max_cosine} from every labelled post"
        )
        return
    write_parquet(grown, pool_path(layout))
    added = grown.filter(pl.col("round") == new_round.number)
    context.log.info(f"uncertainty round {new_round.number}: {new_round.added} posts added")
    context.log_event(
        dg.AssetMaterialization(
            asset_key="rating_pool",
            description=f"{UNCERTAINTY} round {new_round.number}",
            metadata={
                "dagster/row_count": grown.height,
                "added_this_run": new_round.added,
                "round_kind": UNCERTAINTY,
                "strata_in_round": new_round.strata,
                "candidates": available.height,
                "labelled_posts_learnt_from": labelled.height,
                "by_stratum": markdown_table(
                    added["stratum"].value_counts(sort=True).head(20).to_dicts()
                ),
            },
        )
    )


@dg.job(name=JOB, description="Append an uncertainty round to the rating pool (active learning).")
def pool_uncertainty_job() -> None:
    add_uncertainty_round_op()
