"""`scoretag run`."""

from __future__ import annotations

import click

from orchestration.cli.common import console, current_profile
from orchestration.cli.summary import print_run
from orchestration.jobs import MAIN_JOB


@click.command()
@click.option("--job", "job_name", default=MAIN_JOB, show_default=True, help="Job to run.")
def run(job_name: str) -> None:
    """Materialize the whole lineage (or --job) and summarize."""
    from orchestration.definitions import build_defs
    from orchestration.runner import run_job

    profile = current_profile()
    with console.status(f"running {job_name} on profile {profile.name}..."):
        outcome = run_job(profile, build_defs(profile), job_name)
    print_run(outcome)
    if not outcome.success:
        raise click.ClickException(f"run {outcome.run_ids[-1]} failed")
