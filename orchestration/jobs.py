"""Jobs a user launches by name.

Ingestion is partitioned (one partition per raw file) and everything after it is not, so the
lineage runs as two jobs: `ingest` for one raw file, `main` for the rest. `scoretag run`
(and the UI's "Materialize all", as a backfill) runs both in order.
"""

from __future__ import annotations

import dagster as dg

INGEST_JOB = "ingest"
MAIN_JOB = "main"
POOL_JOB = "pool"
LABELS_JOB = "labels"
RAW_POSTS = dg.AssetKey("raw_posts")
RATING_POOL = dg.AssetKey("rating_pool")
MANUAL_LABELS = dg.AssetKey("manual_labels")

ingest_job = dg.define_asset_job(
    INGEST_JOB,
    selection=dg.AssetSelection.assets(RAW_POSTS),
    description="Ingest one raw file (a partition of raw_posts) with its checks.",
)

main_job = dg.define_asset_job(
    MAIN_JOB,
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets(RAW_POSTS),
    description="Materialize everything downstream of ingestion, with every asset check.",
)


pool_job = dg.define_asset_job(
    POOL_JOB,
    selection=(
        dg.AssetSelection.assets(RATING_POOL).upstream() - dg.AssetSelection.assets(RAW_POSTS)
    ),
    description="Normalize and draw the rating pool: what the labeling app needs.",
)

labels_job = dg.define_asset_job(
    LABELS_JOB,
    selection=dg.AssetSelection.assets(MANUAL_LABELS),
    description="Resolve the label store into manual_labels (the labels sensor runs this).",
)


def job_defs() -> dg.Definitions:
    return dg.Definitions(jobs=[ingest_job, main_job, pool_job, labels_job])
