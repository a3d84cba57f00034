"""Jobs a user launches by name.

Ingestion and embedding are partitioned (one partition per raw file) and everything after
them is not, so the lineage runs as two jobs: `ingest` for one raw file (its posts, then the
embeddings of its new images), `main` for the rest. `scoretag run` (and the UI's
"Materialize all", as a backfill) runs both in order. `embed` re-embeds raw files alone:
backfill it over every partition after switching the backbone. `images` downloads what is
missing (when `[images] fetch` is on) and refreshes the image index; the late-images sensor
then embeds the raw files whose images arrived after they were embedded. `evaluate` scores one
evaluation set (a partition of image_evaluations).
"""

from __future__ import annotations

import dagster as dg

INGEST_JOB = "ingest"
EMBED_JOB = "embed"
MAIN_JOB = "main"
POOL_JOB = "pool"
LABELS_JOB = "labels"
RAW_POSTS = dg.AssetKey("raw_posts")
EMBEDDINGS = dg.AssetKey("embeddings")
PER_RAW_FILE = dg.AssetSelection.assets(RAW_POSTS, EMBEDDINGS)
IMAGES_JOB = "images"
IMAGE_FILES = dg.AssetKey("image_files")
IMAGE_INDEX = dg.AssetKey("image_index")
RATING_POOL = dg.AssetKey("rating_pool")
NORMALIZED_SCORES = dg.AssetKey("normalized_scores")
SCORED_CATALOG = dg.AssetKey("scored_catalog")
CAPTION_SHARDS = dg.AssetKey("caption_shards")
CATALOG_JOB = "catalog"
MANUAL_LABELS = dg.AssetKey("manual_labels")
EVALUATE_JOB = "evaluate"
IMAGE_EVALUATIONS = dg.AssetKey("image_evaluations")

ingest_job = dg.define_asset_job(
    INGEST_JOB,
    selection=PER_RAW_FILE,
    description="Ingest one raw file (a partition) and embed its new images, with checks.",
)

embed_job = dg.define_asset_job(
    EMBED_JOB,
    selection=dg.AssetSelection.assets(EMBEDDINGS),
    description="Embed the images of one raw file with the configured backbone.",
)

images_job = dg.define_asset_job(
    IMAGES_JOB,
    selection=dg.AssetSelection.assets(IMAGE_FILES, IMAGE_INDEX),
    description=(
        "Download the missing images (when [images] fetch is on) and refresh the image index "
        "from what changed; the late-images sensor then embeds raw files with new images."
    ),
)

main_job = dg.define_asset_job(
    MAIN_JOB,
    selection=dg.AssetSelection.all() - PER_RAW_FILE - dg.AssetSelection.assets(IMAGE_EVALUATIONS),
    description=(
        "Materialize everything downstream of the raw files, with every asset check "
        "(evaluation sets have a job of their own)."
    ),
)


catalog_job = dg.define_asset_job(
    CATALOG_JOB,
    selection=dg.AssetSelection.assets(NORMALIZED_SCORES, SCORED_CATALOG, CAPTION_SHARDS),
    description=(
        "The incremental path: normalize, score the posts the active head has not, then "
        "refresh the caption shards (only shards whose content changed are rewritten)."
    ),
)

pool_job = dg.define_asset_job(
    POOL_JOB,
    selection=dg.AssetSelection.assets(RATING_POOL).upstream() - PER_RAW_FILE,
    description="Normalize and draw the rating pool: what the labeling app needs.",
)

labels_job = dg.define_asset_job(
    LABELS_JOB,
    selection=dg.AssetSelection.assets(MANUAL_LABELS),
    description="Resolve the label store into manual_labels (the labels sensor runs this).",
)


evaluate_job = dg.define_asset_job(
    EVALUATE_JOB,
    selection=dg.AssetSelection.assets(IMAGE_EVALUATIONS),
    description=(
        "Score one evaluation set (a partition: a folder of generated images) with the active "
        "head and compare it with the sets evaluated before it."
    ),
)


def job_defs() -> dg.Definitions:
    from assets.head.jobs import pool_uncertainty_job

    jobs = [ingest_job, embed_job, images_job, main_job, catalog_job, pool_job, labels_job]
    jobs.append(evaluate_job)
    jobs.append(pool_uncertainty_job)
    return dg.Definitions(jobs=jobs)
