"""Data-quality checks of embeddings, per partition, against the backbone of the run's
profile: vectors sound (GX suite), and every requested image accounted for."""

import dagster as dg
import numpy as np
import polars as pl

from assets.embeddings.assets import embeddings, store_for
from assets.embeddings.store import EmbeddingStore, IdentityMismatch
from assets.ingest.assets import raw_files
from assets.ingest.paths import RawFile
from orchestration import quality
from orchestration.resources import BackboneResource, ScoretagResource

NORM_TOLERANCE = 0.01  # fp16 storage moves a unit vector's norm by about 1e-3


def _shard_problem(store: EmbeddingStore, path) -> str:
    try:
        store.verify(path)
    except IdentityMismatch as e:
        return str(e)
    width = store.schema(path).field("embedding").type.byte_width
    if width != 2 * store.identity.embed_dim:
        return f"vectors of {width // 2} dimensions, expected {store.identity.embed_dim}"
    return ""


def _vector_table(store: EmbeddingStore, partition: str) -> tuple[pl.DataFrame, dict]:
    """Per vector: key, norm, finite; and the shards that are not this backbone's."""
    paths = store.shards(partition)
    problems = {p.name: problem for p in paths if (problem := _shard_problem(store, p))}
    good = [p for p in paths if p.name not in problems]
    keys, vectors = store.read(good)
    wide = vectors.astype(np.float32)
    table = pl.DataFrame(
        {
            "image_key": keys,
            "norm": np.linalg.norm(wide, axis=1),
            "finite": np.isfinite(wide).all(axis=1),
        }
    )
    return table, problems


def _aggregates(table: pl.DataFrame, problems: dict) -> pl.DataFrame:
    return table.select(
        vectors=pl.len(),
        foreign_shards=pl.lit(len(problems)),
        non_finite=(~pl.col("finite")).sum(),
        duplicate_keys=pl.len() - pl.col("image_key").n_unique(),
        min_norm=pl.col("norm").min().fill_null(1.0),
        max_norm=pl.col("norm").max().fill_null(1.0),
    )


@dg.asset_check(asset=embeddings, partitions_def=raw_files, blocking=True)
def embeddings_vectors(
    context: dg.AssetCheckExecutionContext,
    scoretag: ScoretagResource,
    backbone: BackboneResource,
) -> dg.AssetCheckResult:
    """GX suite over this raw file's shards: every shard written by the current backbone
    with vectors of its dimension (else counted as foreign), unit norm (within fp16
    rounding), no NaN or inf, no image_key twice."""
    import great_expectations as gx

    e = gx.expectations
    store = store_for(scoretag.layout, backbone)
    table, problems = _vector_table(store, context.partition_key)
    dim = store.identity.embed_dim
    aggregates = _aggregates(table, problems)
    low, high = 1 - NORM_TOLERANCE, 1 + NORM_TOLERANCE
    zero = ("foreign_shards", "non_finite", "duplicate_keys")
    outcomes = [
        quality.validate(
            quality.sample(table.lazy().filter(pl.col("finite"))),
            [e.ExpectColumnValuesToBeBetween(column="norm", min_value=low, max_value=high)],
            "vectors",
        ),
        quality.validate(
            aggregates,
            [
                *(
                    e.ExpectColumnValuesToBeBetween(column=c, min_value=0, max_value=0)
                    for c in zero
                ),
                e.ExpectColumnValuesToBeBetween(column="min_norm", min_value=low),
                e.ExpectColumnValuesToBeBetween(column="max_norm", max_value=high),
            ],
            "table",
        ),
    ]
    row = aggregates.row(0, named=True)
    return quality.check_result(
        outcomes,
        {
            "backbone_id": store.identity.id,
            "embed_dim": dim,
            **{k: float(v) if "norm" in k else int(v) for k, v in row.items()},
            "foreign": dg.MetadataValue.json(problems),
        },
    )


@dg.asset_check(asset=embeddings, partitions_def=raw_files, blocking=True)
def embeddings_complete(
    context: dg.AssetCheckExecutionContext,
    scoretag: ScoretagResource,
    backbone: BackboneResource,
) -> dg.AssetCheckResult:
    """Every image the raw file asked for is embedded (by this or an earlier raw file) or
    listed in embedding_failures with a reason."""
    raw = RawFile.from_key(context.partition_key)
    store = store_for(scoretag.layout, backbone)
    requested = store.requested(raw.key)
    if requested is None:
        return dg.AssetCheckResult(
            passed=False,
            description=f"{raw.key} has not been embedded with backbone {store.identity.id}",
        )
    failures = store.partition_failures(raw.key).select("image_key")
    accounted = pl.concat([store.keys().to_frame(), failures])
    missing = requested.join(accounted, on="image_key", how="anti")
    return dg.AssetCheckResult(
        passed=missing.height == 0,
        description=(
            f"{requested.height:,} requested, {failures.height:,} failed, "
            f"{missing.height:,} neither embedded nor listed as failures"
        ),
        metadata={
            "requested": requested.height,
            "failed": failures.height,
            "missing": missing.height,
            "missing_examples": dg.MetadataValue.json(missing["image_key"].head(5).to_list()),
        },
    )
