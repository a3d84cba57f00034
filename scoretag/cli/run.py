"""`scoretag run`."""

from __future__ import annotations

import click

from scoretag.cli.common import console, current_profile
from scoretag.cli.summary import print_pipeline


@click.command()
def run() -> None:
    """Ingest new raw files, materialize the rest, summarize."""
    from orchestration.definitions import build_defs
    from orchestration.runner import run_lineage

    profile = current_profile()
    with console.status(f"running the lineage on profile {profile.name}...") as status:
        outcome = run_lineage(profile, build_defs(profile), on_step=status.update)
    print_pipeline(profile, outcome)
    if not outcome.success:
        raise click.ClickException("some runs failed: see above, or the runs page of the UI")
