"""Sensors: the inbox sensor turns each raw file dropped into `inbox/<site>/` into a raw_posts
partition and requests its ingestion; the late-images sensor embeds the raw files whose
images arrived after they were embedded; the labels sensor follows the label store; the pool
limits sensor keeps the instance's concurrency pools at the profile's limits; the evaluations
sensor evaluates each folder of generated images dropped into `evaluations/`."""

import json
import time

import dagster as dg

from assets.ingest.assets import raw_files
from assets.ingest.paths import inbox_files, signature
from assets.labels.store import LabelStore
from orchestration.backlog import unembedded
from orchestration.evaluations import EVALUATION_SETS, stale_sets
from orchestration.inbox import ingested_signature
from orchestration.jobs import IMAGE_INDEX, embed_job, evaluate_job, ingest_job, labels_job
from orchestration.profile import apply_pool_limits
from orchestration.resources import ScoretagResource

SETTLE_SECONDS = 30
"""A file modified more recently than this may still be being copied: wait for it."""


@dg.sensor(
    job=ingest_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING
)
def inbox_sensor(
    context: dg.SensorEvaluationContext, scoretag: ScoretagResource
) -> dg.SensorResult:
    """New or changed files in $SCORETAG_HOME/inbox/<site>/ become raw_posts partitions."""
    layout = scoretag.layout
    seen: dict[str, str] = json.loads(context.cursor or "{}")
    known = set(context.instance.get_dynamic_partitions(raw_files.name))
    settled_before = time.time() - SETTLE_SECONDS
    requests, added = [], []
    for raw in inbox_files(layout):
        path = raw.path(layout)
        if path.stat().st_mtime > settled_before:
            continue
        mark = signature(path)
        if seen.get(raw.key) == mark:
            continue
        seen[raw.key] = mark
        if ingested_signature(context.instance, raw.key) == mark:
            continue  # already ingested (by `scoretag run` or `scoretag ingest`)
        if raw.key not in known:
            added.append(raw.key)
        requests.append(dg.RunRequest(partition_key=raw.key, run_key=f"{raw.key}@{mark}"))
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[raw_files.build_add_request(added)] if added else [],
        cursor=json.dumps(seen, sort_keys=True),
    )


@dg.sensor(
    job=embed_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING
)
def late_images_sensor(
    context: dg.SensorEvaluationContext, scoretag: ScoretagResource
) -> dg.SensorResult | dg.SkipReason:
    """After each image index refresh, an `embed` run for every raw file with images the
    index found since its last embeddings run (downloaded later, a tar shard added), and for
    raw files the backbone has not embedded: nothing is ingested again."""
    latest = context.instance.fetch_materializations(IMAGE_INDEX, limit=1).records
    if not latest or str(latest[0].storage_id) == (context.cursor or ""):
        return dg.SkipReason("the image index was not refreshed since the last look")
    tick = latest[0].storage_id
    files = unembedded(scoretag.load())
    if not files:
        return dg.SensorResult(
            skip_reason="no raw file has images its embeddings were not asked for",
            cursor=str(tick),
        )
    context.log.info(f"{len(files)} raw files to embed: {', '.join(f.key for f in files[:10])}")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=f.key, run_key=f"{f.key}@{tick}") for f in files],
        cursor=str(tick),
    )


@dg.sensor(
    job=labels_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING
)
def labels_sensor(
    context: dg.SensorEvaluationContext, scoretag: ScoretagResource
) -> dg.SensorResult | dg.SkipReason:
    """New events in the label store (labels, skips, undos, and pair choices) re-materialize
    manual_labels."""
    store = scoretag.layout.label_store
    if not store.is_file():
        return dg.SkipReason(f"no label store yet at {store}")
    with LabelStore(store, read_only=True) as labels:
        mark = f"{labels.last_id()}/{labels.last_pair_id()}"  # rating event / pair event
    if mark == (context.cursor or "0/0"):
        return dg.SkipReason(f"no new labels or pair choices since events {mark}")
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=f"labels@{mark}")], cursor=mark)


@dg.sensor(
    job=evaluate_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING
)
def evaluations_sensor(
    context: dg.SensorEvaluationContext, scoretag: ScoretagResource
) -> dg.SensorResult | dg.SkipReason:
    """Each folder in $SCORETAG_HOME/evaluations/ becomes an image_evaluations partition,
    evaluated once its files have settled; evaluated again when they change, or when another
    head becomes active (scored from cached vectors, nothing embedded again)."""
    stale = stale_sets(context.instance, scoretag.layout)
    if not stale:
        return dg.SkipReason("every evaluation set is evaluated under the active head")
    known = set(context.instance.get_dynamic_partitions(EVALUATION_SETS))
    added = [name for name in stale if name not in known]
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(partition_key=name, run_key=f"{name}@{mark}")
            for name, mark in stale.items()
        ],
        dynamic_partitions_requests=[dg.AddDynamicPartitionsRequest(EVALUATION_SETS, added)]
        if added
        else [],
    )


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def pool_limits_sensor(
    context: dg.SensorEvaluationContext, scoretag: ScoretagResource
) -> dg.SkipReason:
    """The instance's pools at the profile's limits: `gpu` at `gpu_slots` (the GPUs), `duckdb`
    at one (DuckDB allows one writing process), `network` at one (one downloading step, so
    per-site rate limits hold). On a deployed instance (Postgres, the Helm
    chart's daemon) nobody has to set them by hand, and a changed `gpu_slots` takes effect
    within a minute."""
    limits = scoretag.load().pool_limits
    changed = apply_pool_limits(context.instance, limits)
    for pool, (was, now) in changed.items():
        context.log.info(f"pool {pool}: limit {was} -> {now}")
    state = ", ".join(f"{pool}={limit}" for pool, limit in limits.items())
    return dg.SkipReason(f"pool limits {'set' if changed else 'already'} at {state}")


# Declarative automation (the assets' automation conditions) evaluated every 30 s, on by
# default: a new raw_posts partition flows on to its embeddings, normalized_scores and the
# catalog's scores without anyone launching a run.
automation_sensor = dg.AutomationConditionSensorDefinition(
    "scoretag_automation",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)


def sensor_defs() -> dg.Definitions:
    sensors = [inbox_sensor, late_images_sensor, labels_sensor, evaluations_sensor]
    sensors.append(pool_limits_sensor)
    sensors.append(automation_sensor)
    return dg.Definitions(sensors=sensors)
