"""embeddings: every image of a raw file embedded once per backbone (the GPU step)."""

from collections.abc import Callable

import dagster as dg
import polars as pl

from assets.embeddings.dataset import resolve_workers
from assets.embeddings.embed import Plan, Progress, embed
from assets.embeddings.scope import Scope, scope
from assets.embeddings.store import FAILURES, EmbeddingStore
from assets.images.assets import image_index
from assets.images.find import load_index
from assets.ingest.assets import raw_files, raw_posts
from assets.ingest.paths import RawFile
from orchestration import devices, objectstore
from orchestration.plots import markdown_table
from orchestration.pools import GPU, GPU_OP_TAGS
from orchestration.progress import report
from orchestration.resources import BackboneResource, ScoretagResource
from orchestration.settings import Settings
from orchestration.storage import Layout

STAGE = "embeddings"
POST_COLUMNS = ["site", "post_id", "md5", "sha512", "file_ext"]
LOG_EVERY_S = 30.0


class EmbeddingsConfig(dg.Config):
    """One-off overrides of the profile's [embed] settings for this run."""

    workers: int | None = None
    shard_size: int | None = None


def store_for(layout: Layout, backbone: BackboneResource) -> EmbeddingStore:
    return EmbeddingStore(
        layout.shared_stage_dir(STAGE), backbone.identity(), backbone.provenance()
    )


def _scope(raw: RawFile, layout: Layout, settings: Settings) -> Scope:
    posts_path = raw.output(layout, "posts")
    if not posts_path.is_file():
        raise dg.Failure(f"raw_posts has no output for {raw.key}: materialize it first")
    posts = objectstore.read_parquet(posts_path, columns=POST_COLUMNS)
    return scope(posts, load_index(layout, settings, posts), settings.pool.non_image_exts)


def plan_for(
    settings: Settings, backbone: BackboneResource, config: EmbeddingsConfig | None = None
) -> Plan:
    embed_settings = settings.embed
    config = config or EmbeddingsConfig()
    return Plan(
        batch_size=backbone.batch_size,
        workers=resolve_workers(
            config.workers if config.workers is not None else embed_settings.workers
        ),
        prefetch=embed_settings.prefetch,
        shard_size=config.shard_size or embed_settings.shard_size,
        max_pixels=embed_settings.max_pixels,
        jpeg_draft=embed_settings.jpeg_draft,
    )


def progress_logger(context: dg.AssetExecutionContext, task: str) -> Callable[[Progress], None]:
    """Every batch to a progress bar listening in this process (`scoretag run`); every
    LOG_EVERY_S seconds, and at the end, to the run's log (the UI)."""
    last = [0.0]

    def log(progress: Progress) -> None:
        report(task, progress.done, progress.total, progress.failed)
        if progress.seconds - last[0] >= LOG_EVERY_S or progress.done == progress.total:
            last[0] = progress.seconds
            eta = progress.eta_s
            left = f", {eta / 60:,.1f} min left" if eta and progress.done < progress.total else ""
            context.log.info(
                f"{progress.done:,}/{progress.total:,} images "
                f"({progress.failed:,} failed), {progress.images_per_s:,.0f} images/s{left}"
            )

    return log


def _metadata(
    store: EmbeddingStore, found: Scope, cached: int, progress: Progress, failures: pl.DataFrame
) -> dict:
    reasons = failures["reason"].value_counts(sort=True).rename({"count": "images"})
    identity = store.identity
    return {
        "dagster/row_count": cached + progress.embedded,
        "backbone_id": identity.id,
        "model": identity.model,
        "weights": identity.weights,
        "embed_dim": identity.embed_dim,
        "posts": found.posts,
        "posts_not_images": found.not_images,
        "images_without_file": found.without_file,
        "requested": found.requested,
        "cached_hits": cached,
        "embedded": progress.embedded,
        "failed": progress.failed,
        "failures_by_reason": markdown_table(reasons.to_dicts()),
        "images_per_s": round(progress.images_per_s, 1),
        "seconds": round(progress.seconds, 2),
        "shards_written": len(progress.shards),
        "store": dg.MetadataValue.path(store.url),
    }


def step_device(context: dg.AssetExecutionContext, profile, backbone: BackboneResource) -> str:
    """This step's device: a GPU of its own where the machine has several (see
    orchestration/devices.py), and a warning when gpu_slots asks for more than there are."""
    settings = profile.settings
    gpus = devices.cuda_devices() if backbone.device not in ("cpu", "mps") else []
    warning = devices.slot_warning(
        settings.gpu_slots, backbone.device, len(gpus), settings.deploy.executor
    )
    if warning:
        context.log.warning(warning)
    return devices.claim_device(backbone.device, profile.layout.home, on_wait=context.log.info)


@dg.asset(
    partitions_def=raw_files,
    deps=[raw_posts, image_index],
    group_name="model",
    pool=GPU,
    kinds={"pytorch", "gpu", "parquet"},
    op_tags=GPU_OP_TAGS,
    # A new raw file embeds its images; a refreshed image index does not re-run every raw
    # file (`scoretag run` and the images sensor pick those with new images).
    automation_condition=dg.AutomationCondition.eager().ignore(
        dg.AssetSelection.assets(image_index)
    ),
    owners=["team:curation"],
    code_version="1",
)
def embeddings(
    context: dg.AssetExecutionContext,
    config: EmbeddingsConfig,
    scoretag: ScoretagResource,
    backbone: BackboneResource,
) -> dg.MaterializeResult:
    """open_clip image embeddings (fp16, unit length) of every picture of one raw file,
    stored per backbone in parquet shards keyed by image_key. An image embedded before with
    the same backbone (from any raw file) is not embedded again; one that cannot be used is
    listed in embedding_failures with its reason, and the run goes on."""
    profile = scoretag.load()
    raw = RawFile.from_key(context.partition_key)
    found = _scope(raw, profile.layout, profile.settings)
    store = store_for(profile.layout, backbone).ensure()
    todo = found.images.join(store.keys().to_frame(), on="image_key", how="anti")
    cached = found.requested - todo.height
    context.log.info(
        f"{found.requested:,} images requested: {cached:,} embedded before, {todo.height:,} to do"
    )
    progress, failures = Progress(total=0), pl.DataFrame(schema=FAILURES)
    if todo.height:
        plan = plan_for(profile.settings, backbone, config)
        loaded = backbone.load(step_device(context, profile, backbone))
        context.log.info(
            f"{store.identity.id} on {devices.describe(loaded.device)} ({loaded.precision}), "
            f"batch {plan.batch_size}, {plan.workers} decoding workers"
        )
        progress, failures = embed(
            todo.sort("path", "offset"),
            loaded,
            store,
            raw.key,
            plan,
            progress_logger(context, f"embeddings {context.partition_key}"),
        )
    store.write_failures(raw.key, failures)
    # Last: a run killed before here has no `requested` file, so `scoretag run` sees the raw
    # file as not embedded yet and resumes it.
    store.write_requested(raw.key, found.images.select("image_key"))
    metadata = _metadata(store, found, cached, progress, failures)
    if todo.height:
        metadata["device"] = devices.describe(loaded.device)
    if not backbone.settings.trained:
        metadata["quality_signal"] = "none: random weights (untrained backbone)"
        # Expected in the demo (its summary says so once); a mistake anywhere else.
        log = context.log.info if profile.settings.demo is not None else context.log.warning
        log(f"{store.identity.model} has random weights: its embeddings carry no quality signal")
    return dg.MaterializeResult(metadata=metadata)
