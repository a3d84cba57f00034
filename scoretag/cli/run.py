"""`scoretag run`."""

from __future__ import annotations

import click

from scoretag.cli.common import console, current_profile
from scoretag.cli.summary import print_pipeline


class _RunCommand(click.Command):
    """`scoretag run --help` ends with the jobs of the Definitions and what each does (read
    from the jobs themselves, only when help is asked for)."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from orchestration.jobs import job_defs

        jobs = sorted(job_defs().jobs or [], key=lambda j: j.name)
        rows = [(job.name, job.description or "") for job in jobs if not job.name.startswith("__")]
        with formatter.section("Jobs (--job)"):
            formatter.write_dl(rows)
        super().format_epilog(ctx, formatter)


@click.command(cls=_RunCommand)
@click.option(
    "--job",
    "job",
    default=None,
    metavar="NAME",
    help="Run this job of the Definitions instead of main (listed below). [default main]",
)
@click.option(
    "--select",
    "select",
    default=None,
    metavar="SELECTION",
    help="Materialize a Dagster asset selection instead of a job, with its checks: "
    "'scored_catalog+', '*caption_shards', 'key:rating_pool', 'group:labeling'.",
)
@click.option(
    "--no-ingest",
    is_flag=True,
    help="Skip ingesting new inbox files and embedding what the backbone has not.",
)
def run(job: str | None, select: str | None, no_ingest: bool) -> None:
    """Ingest new raw files, materialize the rest, summarize.

    Without options: one `ingest` run per new or changed inbox file, one `embed` run per
    file the backbone has not embedded, then `main`. `--job` and `--select` run after the
    same ingest and embed runs (unless `--no-ingest`); `--job ingest` and `--job embed` run
    only those per-file runs.
    """
    from orchestration.definitions import build_defs
    from orchestration.jobs import IMAGE_EVALUATIONS, MAIN_JOB
    from orchestration.runner import (
        PER_SET,
        RunRequestError,
        check_job,
        run_lineage,
        select_assets,
    )

    if job is not None and select is not None:
        raise click.UsageError("--job and --select exclude each other: give one")
    profile = current_profile()
    defs = build_defs(profile)
    selection, per_file = None, []
    try:
        check_job(defs, job or MAIN_JOB)
        if select is not None:
            selection, per_file = select_assets(defs, select)
            if per_file and no_ingest and not selection:
                raise RunRequestError(
                    f"{select!r} names only assets made per raw file "
                    f"({', '.join(k.to_user_string() for k in per_file)}): drop --no-ingest"
                )
    except RunRequestError as e:
        raise click.ClickException(str(e)) from None
    per_set = [k for k in per_file if k == IMAGE_EVALUATIONS]
    per_file = [k for k in per_file if k != IMAGE_EVALUATIONS]
    if per_file:
        names = ", ".join(k.to_user_string() for k in per_file)
        how = "not run (--no-ingest)" if no_ingest else "by the ingest and embed runs"
        console.print(f"{names}: made per raw file, {how}", soft_wrap=True)
    if per_set:
        console.print(f"{PER_SET}: not run here", soft_wrap=True)
    from scoretag.cli.progress import run_status

    # A status line, and a progress bar (images/s, ETA) for each embeddings step.
    with run_status(f"running the lineage on profile {profile.name}...") as status:
        outcome = run_lineage(
            profile,
            defs,
            on_step=status.update,
            job=job or MAIN_JOB,
            selection=selection,
            ingest=not no_ingest,
        )
    print_pipeline(profile, outcome)
    if not outcome.success:
        raise click.ClickException("some runs failed: see above, or the runs page of the UI")
