"""Run a job of the active profile on its own Dagster instance, as the UI would see it."""

from __future__ import annotations

from dataclasses import dataclass, field

import dagster as dg

from orchestration.jobs import MAIN_JOB
from orchestration.profile import Profile, activate, set_pool_limits


@dataclass
class RunOutcome:
    """What one or more runs produced, read back from the instance's event log."""

    run_ids: list[str]
    success: bool
    materializations: dict[str, dict] = field(default_factory=dict)  # asset -> metadata
    checks: list[dict] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def _metadata_values(metadata: dict) -> dict:
    return {key: getattr(value, "value", value) for key, value in metadata.items()}


def collect(instance: dg.DagsterInstance, run_ids: list[str]) -> RunOutcome:
    """Materializations, check evaluations and step failures of these runs."""
    outcome = RunOutcome(run_ids=run_ids, success=True)
    for run_id in run_ids:
        run = instance.get_run_by_id(run_id)
        outcome.success &= run is not None and run.status == dg.DagsterRunStatus.SUCCESS
        for record in instance.all_logs(run_id):
            event = record.dagster_event
            if event is None:
                continue
            if event.is_step_materialization:
                mat = event.step_materialization_data.materialization
                key = mat.asset_key.to_user_string()
                outcome.materializations[key] = _metadata_values(mat.metadata)
            elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
                evaluation = event.asset_check_evaluation_data
                outcome.checks.append(
                    {
                        "asset": evaluation.asset_key.to_user_string(),
                        "check": evaluation.check_name,
                        "passed": evaluation.passed,
                        "severity": evaluation.severity.value,
                        "description": evaluation.description or "",
                    }
                )
            elif event.is_step_failure:
                outcome.failures.append(
                    f"{event.step_key}: {event.step_failure_data.error.message.strip()}"
                )
    return outcome


# The terminal gets warnings and the summary; the full log stays in the run's event log.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def run_job(profile: Profile, defs: dg.Definitions, job_name: str = MAIN_JOB) -> RunOutcome:
    """Execute a job in this process, recorded on the profile's instance (so the UI shows it)."""
    activate(profile)
    set_pool_limits(profile)
    job = defs.resolve_job_def(job_name)
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(run_config=QUIET, instance=instance, raise_on_error=False)
        return collect(instance, [result.run_id])
