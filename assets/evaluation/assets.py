"""image_evaluations: what a model trained on the captions generates, scored and compared.

One dynamic partition per evaluation set (a folder under $SCORETAG_HOME/evaluations/, added by
the evaluations sensor or by `scoretag evaluate PATH`).
"""

import dagster as dg
import polars as pl

from assets.captions.assets import caption_shards
from assets.captions.paths import calibration_record
from assets.embeddings.assets import STAGE as EMBEDDINGS_STAGE
from assets.embeddings.assets import plan_for, progress_logger, step_device
from assets.evaluation import report, stats
from assets.evaluation.evaluate import Caches, Evaluation, evaluate_set, scored_sets, write
from assets.evaluation.paths import results_dir, set_mark, set_names, set_root
from assets.evaluation.scoring import NoHead, frozen_calibrations, heads_for
from assets.head.assets import aesthetic_head
from assets.head.paths import registry
from orchestration.plots import markdown_image, markdown_table
from orchestration.pools import GPU, GPU_OP_TAGS
from orchestration.profile import Profile
from orchestration.resources import BackboneResource, ScoretagResource
from orchestration.settings import EvaluationSettings

evaluation_sets = dg.DynamicPartitionsDefinition(name="evaluation_sets")
PROMPT_ROWS = 20  # prompts shown in the asset's metadata (all are in summary.json)


def caches_for(profile: Profile, backbone: BackboneResource) -> Caches:
    stage = profile.layout.shared_stage_dir(EMBEDDINGS_STAGE)
    return Caches.at(stage, backbone.identity(), backbone.provenance())


def options(settings: EvaluationSettings) -> report.Options:
    return report.Options(
        settings.good_bucket, settings.resamples, settings.confidence, settings.seed
    )


def earlier_sets(profile: Profile, name: str) -> list[str]:
    """The `[evaluation] compare_with` sets evaluated most recently before this one."""
    layout, keep = profile.layout, profile.settings.evaluation.compare_with
    done = {
        n: path.stat().st_mtime
        for n in set_names(layout)
        if n != name and (path := results_dir(layout, n) / "summary.json").is_file()
    }
    return sorted(done, key=done.get)[-keep:] if keep else []


def _metadata(
    evaluation: Evaluation,
    comparison: report.Comparison,
    calibrated: bool,
    prompts: pl.DataFrame,
) -> dict:
    head = comparison.head
    summary = evaluation.summaries[head]
    reasons = evaluation.failures.group_by("reason").len("images").sort("images", descending=True)
    largest = prompts.sort("images", "group", descending=[True, False]).head(PROMPT_ROWS)
    figures = {k: float(summary[k]) for k in stats.METRICS if summary.get(k) is not None}
    return {
        "dagster/row_count": evaluation.images.height,
        "found": evaluation.found,
        "scored": evaluation.images.height,
        "failed": evaluation.failed_images,
        "bad_prompt_lines": int((evaluation.failures["reason"] == "bad_prompt").sum()),
        "failures_by_reason": markdown_table(reasons.to_dicts()),
        "embedded": evaluation.embedded,
        "cached_hits": evaluation.cached,
        "prompts_embedded": evaluation.prompts_embedded,
        "head": head,
        "heads": ", ".join(evaluation.scores),
        "calibration": (
            f"the frozen cut-points of head {head}"
            if calibrated
            else f"none: head {head} has no stored cut-points yet (its first export, or "
            "`scoretag calibrate`, makes them), so no buckets or good image rate"
        ),
        **figures,
        "sets_side_by_side": markdown_table(comparison.table()),
        "differences": markdown_table(report.difference_rows(comparison)),
        "score_histogram": markdown_image(comparison.histogram_png(), "score distributions"),
        "prompts": markdown_table(largest.to_dicts()),
    }


@dg.asset(
    partitions_def=evaluation_sets,
    deps=[aesthetic_head, caption_shards],
    group_name="evaluation",
    pool=GPU,
    kinds={"pytorch", "gpu", "parquet"},
    op_tags=GPU_OP_TAGS,
    owners=["team:curation"],
    code_version="1",
)
def image_evaluations(
    context: dg.AssetExecutionContext,
    scoretag: ScoretagResource,
    backbone: BackboneResource,
) -> dg.MaterializeResult:
    """One set of generated images scored by the active aesthetic head (and the heads
    `[evaluation] heads` names): the score distribution, the share of each bucket under the
    head's frozen cut-points and the good image rate, the CLIP score of each image against
    its prompt, the diversity within each prompt, and every image that could not be scored
    with its reason. Vectors are cached by content, so a set is embedded once; the set is
    compared with the sets evaluated before it, each difference with a bootstrap interval."""
    profile = scoretag.load()
    layout, settings = profile.layout, profile.settings.evaluation
    name = context.partition_key
    root = set_root(layout, name)
    if not root.is_dir():
        raise dg.Failure(f"no evaluation set {name!r}: {root} is not a folder")
    mark = set_mark(layout, name)  # before reading: a file changed meanwhile evaluates again
    caches = caches_for(profile, backbone)
    try:
        heads = heads_for(registry(layout), caches.images.identity, settings.heads)
    except (NoHead, KeyError) as e:
        raise dg.Failure(str(e.args[0] if isinstance(e, KeyError) else e)) from None
    calibrations = frozen_calibrations(
        lambda head: calibration_record(layout, head), [h.version for h in heads]
    )
    evaluation = evaluate_set(
        name,
        root,
        caches,
        lambda: backbone.load(step_device(context, profile, backbone)),
        plan_for(profile.settings, backbone),
        heads,
        calibrations,
        settings.good_bucket,
        progress_logger(context, f"evaluating {name}"),
    )
    active = evaluation.scores[heads[0].version]
    calibration = calibrations.get(active.head)
    head = next(h for h in heads if h.version == active.head)
    earlier = scored_sets(layout, earlier_sets(profile, name), caches, head, calibration)
    comparison = report.compare_sets([active, *earlier], options(settings), base_first=False)
    prompts = stats.prompt_table(active.rows, active.vectors, settings.good_bucket)
    write(
        evaluation,
        results_dir(layout, name),
        {
            "root": str(root.resolve()),
            "backbone": caches.images.identity.id,
            "calibrations": {h: (list(c.starts) if c else None) for h, c in calibrations.items()},
            "prompts": prompts.to_dicts(),
            "comparison": comparison.to_json(),
            "resolution": stats.score_resolution(
                active.rows, settings.resamples, settings.confidence, settings.seed
            )
            if active.rows.height
            else None,
        },
    )
    context.log.info(
        f"{name}: {evaluation.images.height:,} of {evaluation.found:,} images scored "
        f"({evaluation.embedded:,} embedded, {evaluation.cached:,} from the cache), "
        f"{evaluation.failed_images:,} failed; mean score "
        f"{evaluation.summaries[active.head].get('score_mean')} under head {active.head}"
    )
    metadata = _metadata(evaluation, comparison, calibration is not None, prompts)
    if not backbone.settings.trained:
        metadata["quality_signal"] = "none: random weights (untrained backbone)"
    if evaluation.images.height == 0:
        context.log.warning(f"{name}: no image could be scored ({evaluation.found} found)")
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(mark))
