"""`scoretag images urls` and `scoretag images fetch`: what is missing, as a URL list for
img2dataset, or downloaded here."""

from __future__ import annotations

from pathlib import Path

import click
import httpx
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from assets.images import download, quarantine
from assets.images.fetch import Outcome
from orchestration.atomic import write_parquet
from orchestration.storage import SITES
from scoretag.cli.common import console, current_profile

SITE = click.option(
    "--site", type=click.Choice(SITES), default=None, help="Only this site's posts. [default: all]"
)
RETRY = click.option(
    "--retry-failed",
    is_flag=True,
    help="Also posts that failed for good before (404, 410, a wrong file).",
)


def _left_out(left_out: dict[str, int]) -> str:
    return ", ".join(f"{n:,} {reason}" for reason, n in left_out.items()) or "none"


@click.command()
@SITE
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Parquet file."
)
@RETRY
def urls(site: str | None, out: Path, retry_failed: bool) -> None:
    """Write the missing images as a URL list for img2dataset.

    Columns post_key, site, post_id, md5, sha512, file_ext, url. See docs/stages/images.md
    for the img2dataset command that writes shards the image index reads.
    """
    profile = current_profile()
    todo = download.pending(profile.layout, profile.settings, site, retry_failed)
    write_parquet(todo.urls, out)
    left_out = _left_out(todo.left_out)
    console.print(f"{todo.urls.height:,} URLs written to {out}; left out: {left_out}")


class FetchRate(ProgressColumn):
    """files/s, bytes/s over the whole run, and the failures so far."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0
        files = f"{task.completed / elapsed:,.1f} files/s" if elapsed else "- files/s"
        mb = f"{task.fields['bytes'] / elapsed / 1e6:,.2f} MB/s" if elapsed else "- MB/s"
        failed = task.fields["failed"]
        return Text(f"{files}, {mb}" + (f", {failed:,} failed" if failed else ""))


def _bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        FetchRate(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
    )


def _summary(outcomes: list[Outcome], seconds: float) -> Table:
    counts = quarantine.summary(outcomes)
    table = Table(title="images fetch", show_header=False)
    table.add_row("fetched", f"{counts['fetched']:,} ({counts['bytes'] / 1e6:,.1f} MB)")
    table.add_row("skipped (already stored)", f"{counts['skipped']:,}")
    table.add_row("failed", f"{counts['failed']:,}")
    for reason, n in counts["failed_by_reason"].items():
        table.add_row(f"  {reason}", f"{n:,}")
    table.add_row("seconds", f"{seconds:,.1f}")
    return table


@click.command()
@SITE
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N images.")
@RETRY
def fetch(site: str | None, limit: int | None, retry_failed: bool) -> None:
    """Download the missing images, each checked against its post's hash.

    Files go to <image root>/fetched/<site>/. Politeness ([images] user_agent, concurrency,
    rate_limit, rate_limits), retries and timeouts come from the profile. A file is stored
    only once its md5 (Philomena: sha512) matches the post's; failures go to the quarantine
    table with their reason. Interrupted, it resumes: files already stored are skipped.
    """
    profile = current_profile()
    settings = profile.settings.images
    try:
        download.policy(settings)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    todo = download.pending(profile.layout, profile.settings, site, retry_failed, limit)
    console.print(f"{todo.urls.height:,} images to fetch; left out: {_left_out(todo.left_out)}")
    outcomes: list[Outcome] = []
    with _bar() as bar:
        task = bar.add_task("fetching", total=todo.urls.height, bytes=0, failed=0)

        def on_outcome(outcome: Outcome) -> None:
            outcomes.append(outcome)
            bar.update(task, advance=1, failed=sum(o.status == "failed" for o in outcomes))

        def on_bytes(n: int) -> None:
            bar.update(task, bytes=bar.tasks[task].fields["bytes"] + n)

        try:
            download.download(profile.layout, settings, todo.urls, on_outcome, on_bytes)
        except httpx.InvalidURL as e:
            raise click.ClickException(f"a URL cannot be fetched: {e}") from None
        seconds = bar.tasks[task].elapsed or 0.0
    console.print(_summary(outcomes, seconds))
    if any(o.status == "failed" for o in outcomes):
        console.print(f"failures: {quarantine.quarantine_dir(profile.layout)}")
