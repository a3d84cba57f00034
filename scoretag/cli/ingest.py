"""`scoretag ingest PATH...`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import click
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from orchestration.storage import SITES
from scoretag.cli.common import console, current_profile

SITE_CHOICE = click.Choice(["auto", *SITES])


def _report_table(reports, errors: dict[str, str]) -> Table:
    table = Table(
        "file", "format", "posts", "quarantined", "skipped", "top reasons", title_justify="left"
    )
    for r in reports:
        table.add_row(
            Path(r.source_file).name,
            r.format,
            f"{r.posts:,}",
            f"{r.quarantined:,}",
            f"{r.skipped:,}",
            r.top_reasons(2),
        )
    for path, error in errors.items():
        table.add_row(Path(path).name, "[red]not loaded[/]", "", "", "", error)
    return table


def _export(paths: list[Path], site: str, out: Path) -> None:
    from assets.ingest.export import export
    from assets.ingest.formats import ReadOptions

    settings = current_profile().settings.ingest
    options = ReadOptions(
        batch_rows=settings.batch_rows, danbooru_rating_scheme=settings.danbooru_rating_scheme
    )
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("reading", total=len(paths))
        result = export(
            paths,
            out,
            site=site,
            options=options,
            threshold=settings.quarantine_threshold,
            on_file=lambda p: progress.update(task, advance=1, description=p.name),
        )
    console.print(_report_table(result.reports, result.errors))
    for table, path in result.outputs.items():
        console.print(escape(f"{table:<11} {path}"), soft_wrap=True)
    if result.errors:
        raise click.ClickException(f"{len(result.errors)} file(s) could not be loaded")


def place_in_inbox(path: Path, site: str, inbox: Path) -> Path:
    """Hard-link (or copy) a file into the inbox; refuse to replace a different file."""
    dest = inbox / site / path.name
    if dest.exists():
        if dest.samefile(path) or dest.read_bytes() == path.read_bytes():
            return dest
        raise click.ClickException(
            f"the inbox already holds a different {dest}: rename the new file or remove the old one"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(path, dest)
    except OSError:
        shutil.copy2(path, dest)
    return dest


def _ingest_into_pipeline(paths: list[Path], site: str) -> None:
    from assets.ingest.formats import UnknownFormat, detect
    from assets.ingest.paths import RawFile
    from orchestration.definitions import build_defs
    from orchestration.runner import ingest_files

    profile = current_profile()
    files = []
    for path in paths:
        try:
            fmt = detect(path, site)
        except UnknownFormat as e:
            raise click.ClickException(str(e)) from None
        dest = place_in_inbox(path, fmt.site, profile.layout.inbox)
        files.append(RawFile(fmt.site, dest.name))
    with console.status("ingesting...") as status:
        outcome = ingest_files(profile, build_defs(profile), files, on_step=status.update)
    rows = [m for m in outcome.materializations if m["asset"] == "raw_posts"]
    for m in rows:
        meta = m["metadata"]
        console.print(
            f"{m['partition']}: {meta['dagster/row_count']:,} posts, "
            f"{meta['quarantined']:,} quarantined, {meta['skipped']:,} skipped "
            f"({meta['format']})",
            soft_wrap=True,
        )
    for failure in outcome.failures:
        console.print(f"[red]not loaded[/] {escape(str(failure))}", soft_wrap=True)
    if not outcome.success:
        raise click.ClickException("some files could not be ingested")
    console.print("Run `scoretag run` to normalize and continue the lineage.")


@click.command()
@click.argument(
    "paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--site",
    type=SITE_CHOICE,
    default="auto",
    show_default=True,
    help="Site that wrote the files (auto: tell from their content).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Only write the posts to this parquet file (no Dagster).",
)
def ingest(paths: tuple[Path, ...], site: str, out: Path | None) -> None:
    """Read raw dumps into the pipeline (or just to --out FILE)."""
    if out is not None:
        _export(list(paths), site, out)
    else:
        _ingest_into_pipeline(list(paths), site)
