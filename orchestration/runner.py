"""Run the lineage of the active profile on its own Dagster instance, as the UI would see it:
first every raw file that is new or changed (one `ingest` run per file: posts, then
embeddings), then `images` (download what is missing when on, refresh the image index), then
`embed` for raw files not yet embedded with the profile's backbone or with images that
arrived since, then `main`, or another job of the Definitions, or an asset selection."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg
from dagster._core.errors import DagsterInvalidSubsetError

from assets.ingest.paths import RawFile
from orchestration.backlog import unembedded
from orchestration.evaluations import is_stale, register_sets
from orchestration.inbox import register, stale_files
from orchestration.jobs import (
    EMBED_JOB,
    EVALUATE_JOB,
    IMAGE_EVALUATIONS,
    IMAGES_JOB,
    INGEST_JOB,
    MAIN_JOB,
    POOL_JOB,
)
from orchestration.profile import Profile, activate, set_pool_limits

# The terminal gets warnings and the summary; the full log stays in the run's event log.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _below_error(record: logging.LogRecord) -> bool:
    # Dagster logs a failed step with its stack trace, and each step skipped after it, as
    # errors; the commands print every failure themselves, as its message (`_error_message`).
    return record.levelno < logging.ERROR


@dg.logger(
    config_schema={"log_level": dg.Field(str, is_required=False, default_value="WARNING")},
    description="The terminal of a scoretag command: warnings, and no stack traces.",
)
def terminal(init_context: dg.InitLoggerContext) -> logging.Logger:
    level = init_context.logger_config["log_level"]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(_below_error)
    log = logging.Logger("scoretag", level)
    log.addHandler(handler)
    return log


def _job(defs: dg.Definitions, name: str) -> dg.JobDefinition:
    return defs.resolve_job_def(name).with_logger_defs({"console": terminal})


# Jobs partitioned by raw file: run once per file, on the files that need it.
PER_FILE_JOBS = (INGEST_JOB, EMBED_JOB)


class RunRequestError(ValueError):
    """A job or asset selection that the Definitions do not have: the message says what
    they have instead."""


def job_names(defs: dg.Definitions) -> dict[str, str]:
    """The jobs a user can run by name, with their descriptions (Dagster's implicit asset
    job left out)."""
    return {
        job.name: job.description or ""
        for job in sorted(defs.resolve_all_job_defs(), key=lambda j: j.name)
        if not job.name.startswith("__")
    }


PER_SET = (
    "image_evaluations is made per evaluation set: `scoretag evaluate PATH` (or a folder "
    "dropped into $SCORETAG_HOME/evaluations/, which the evaluations sensor picks up)"
)


def check_job(defs: dg.Definitions, name: str) -> None:
    if name == EVALUATE_JOB:
        raise RunRequestError(f"the evaluate job runs once per set: {PER_SET}")
    names = job_names(defs)
    if name not in names:
        listed = "\n".join(f"  {job}: {about}" for job, about in names.items())
        raise RunRequestError(f"no job named {name!r}; the jobs are:\n{listed}")


def select_assets(defs: dg.Definitions, text: str) -> tuple[list[dg.AssetKey], list[dg.AssetKey]]:
    """The assets that a Dagster asset selection (`scored_catalog+`, `*caption_shards`,
    `key:rating_pool`, `group:labeling`) names: those one run materializes, and the
    partitioned ones, which runs of their own materialize instead (`raw_posts` and
    `embeddings` the per-file `ingest` and `embed` runs, image_evaluations one run per
    evaluation set)."""
    graph = defs.resolve_asset_graph()
    try:
        keys = dg.AssetSelection.from_string(text).resolve(graph)
    except (DagsterInvalidSubsetError, ValueError, SyntaxError) as e:
        known = ", ".join(sorted(k.to_user_string() for k in graph.get_all_asset_keys()))
        raise RunRequestError(f"asset selection {text!r}: {e}\nThe assets: {known}") from None
    if not keys:
        raise RunRequestError(f"asset selection {text!r} names no asset")
    if keys == {IMAGE_EVALUATIONS}:
        raise RunRequestError(PER_SET)
    per_file = sorted(k for k in keys if graph.get(k).partitions_def is not None)
    rest = sorted(k for k in keys if graph.get(k).partitions_def is None)
    return rest, per_file


@dataclass
class RunOutcome:
    """What one or more runs produced, read back from the instance's event log."""

    run_ids: list[str] = field(default_factory=list)
    success: bool = True
    materializations: list[dict] = field(default_factory=list)  # asset, partition, metadata
    checks: list[dict] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def add(self, other: RunOutcome) -> RunOutcome:
        """This outcome followed by `other`'s runs."""
        self.run_ids += other.run_ids
        self.success &= other.success
        self.materializations += other.materializations
        self.checks += other.checks
        self.failures += other.failures
        return self


def _metadata_values(metadata: dict) -> dict:
    return {key: getattr(value, "value", value) for key, value in metadata.items()}


def _record(outcome: RunOutcome, event: dg.DagsterEvent) -> None:
    if event.is_step_materialization:
        mat = event.step_materialization_data.materialization
        outcome.materializations.append(
            {
                "asset": mat.asset_key.to_user_string(),
                "partition": mat.partition,
                "metadata": _metadata_values(mat.metadata),
            }
        )
    elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
        evaluation = event.asset_check_evaluation_data
        outcome.checks.append(
            {
                "asset": evaluation.asset_key.to_user_string(),
                "check": evaluation.check_name,
                "partition": evaluation.partition,
                "passed": evaluation.passed,
                "severity": evaluation.severity.value,
                "description": evaluation.description or "",
            }
        )
    elif event.is_step_failure:
        outcome.failures.append(f"{event.step_key}: {_error_message(event)}")


def _error_message(event: dg.DagsterEvent) -> str:
    """What went wrong, in the user's terms: a Failure's own description, or the exception
    under Dagster's wrapper."""
    error = event.step_failure_data.error
    while (
        error is not None
        and error.cause is not None
        and "DagsterExecutionStep" in (error.cls_name or "")
    ):
        error = error.cause
    message = (error.message if error else "failed").strip()
    return message.removeprefix("dagster._core.definitions.events.Failure: ")


def collect(instance: dg.DagsterInstance, run_ids: list[str], outcome: RunOutcome) -> RunOutcome:
    """Add these runs' materializations, check evaluations and step failures to `outcome`."""
    for run_id in run_ids:
        run = instance.get_run_by_id(run_id)
        outcome.run_ids.append(run_id)
        outcome.success &= run is not None and run.status == dg.DagsterRunStatus.SUCCESS
        for record in instance.all_logs(run_id):
            if record.dagster_event is not None:
                _record(outcome, record.dagster_event)
    return outcome


def _per_file(
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    job_name: str,
    files: list[RawFile],
    outcome: RunOutcome,
    on_step: Callable[[str], None],
) -> None:
    register(instance, files)
    _per_partition(instance, defs, job_name, [raw.key for raw in files], outcome, on_step)


def _per_partition(
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    job_name: str,
    keys: list[str],
    outcome: RunOutcome,
    on_step: Callable[[str], None],
) -> None:
    job = _job(defs, job_name)
    for key in keys:
        on_step(f"{job_name} {key}")
        result = job.execute_in_process(
            run_config=QUIET, instance=instance, partition_key=key, raise_on_error=False
        )
        collect(instance, [result.run_id], outcome)


def ingest_files(
    profile: Profile,
    defs: dg.Definitions,
    files: list[RawFile],
    on_step: Callable[[str], None] = lambda s: None,
) -> RunOutcome:
    """One `ingest` run per file (files already in the inbox), as the inbox sensor would."""
    activate(profile)
    set_pool_limits(profile)
    outcome = RunOutcome()
    with dg.DagsterInstance.get() as instance:
        _per_file(instance, defs, INGEST_JOB, files, outcome, on_step)
    return outcome


def _run(
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    job: str,
    outcome: RunOutcome,
    run_config: dict | None = None,
) -> None:
    result = _job(defs, job).execute_in_process(
        run_config={**QUIET, **(run_config or {})}, instance=instance, raise_on_error=False
    )
    collect(instance, [result.run_id], outcome)


def _run_selection(
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    keys: list[dg.AssetKey],
    outcome: RunOutcome,
) -> None:
    """One run of these assets, with their checks, as the UI's "Materialize selected" makes
    it (Dagster's implicit asset job)."""
    job = defs.resolve_implicit_global_asset_job_def().with_logger_defs({"console": terminal})
    result = job.execute_in_process(
        run_config=QUIET, instance=instance, asset_selection=keys, raise_on_error=False
    )
    collect(instance, [result.run_id], outcome)


def evaluate_sets(
    profile: Profile,
    defs: dg.Definitions,
    names: list[str],
    on_step: Callable[[str], None] = lambda s: None,
    only_stale: bool = False,
) -> RunOutcome:
    """One `evaluate` run per evaluation set (folders already under evaluations/), as the
    evaluations sensor would request them; with `only_stale`, only for the sets whose files
    or active head changed since their last evaluation."""
    activate(profile)
    set_pool_limits(profile)
    outcome = RunOutcome()
    with dg.DagsterInstance.get() as instance:
        if only_stale:
            names = [n for n in names if is_stale(instance, profile.layout, n)]
        register_sets(instance, names)
        _per_partition(instance, defs, EVALUATE_JOB, names, outcome, on_step)
    return outcome


def run_job(
    profile: Profile, defs: dg.Definitions, job: str, run_config: dict | None = None
) -> RunOutcome:
    """One run of `job` on the profile's instance (so the UI shows it)."""
    activate(profile)
    set_pool_limits(profile)
    outcome = RunOutcome()
    with dg.DagsterInstance.get() as instance:
        _run(instance, defs, job, outcome, run_config)
    return outcome


def run_lineage(
    profile: Profile,
    defs: dg.Definitions,
    on_step: Callable[[str], None] = lambda s: None,
    labeling: Callable[[], None] | None = None,
    job: str = MAIN_JOB,
    selection: list[dg.AssetKey] | None = None,
    ingest: bool = True,
) -> RunOutcome:
    """Ingest every new or changed raw file and embed what the backbone has not, then run
    `job` (`main`), or one run of the assets in `selection` instead. `ingest=False` skips the
    per-file runs. The per-file jobs themselves (`ingest`, `embed`) run alone, on the files
    that need them. With `labeling`, the pool is drawn first, `labeling()` fills the label
    store (the demo's simulated labelers), and then the job runs. Recorded on the profile's
    instance, so the UI shows every run."""
    check_job(defs, job)
    activate(profile)
    set_pool_limits(profile)
    outcome = RunOutcome()
    per_file_only = selection is None and job in PER_FILE_JOBS
    with dg.DagsterInstance.get() as instance:
        if (ingest and not per_file_only) or job == INGEST_JOB:
            stale = stale_files(instance, profile.layout)
            _per_file(instance, defs, INGEST_JOB, stale, outcome, on_step)
        if (ingest and not per_file_only) or job == EMBED_JOB:
            on_step("fetching (when on) and scanning the images")
            _run(instance, defs, IMAGES_JOB, outcome)
            _per_file(instance, defs, EMBED_JOB, unembedded(profile), outcome, on_step)
        if per_file_only:
            return outcome
        if labeling is not None:
            on_step("drawing the rating pool")
            _run(instance, defs, POOL_JOB, outcome)
            on_step("labeling the pool")
            labeling()
        if selection is not None:
            if selection:
                on_step(f"materializing {', '.join(k.to_user_string() for k in selection)}")
                _run_selection(instance, defs, selection, outcome)
        else:
            on_step(f"running {job}")
            _run(instance, defs, job, outcome)
    return outcome
