"""`scoretag images`: the image index (scan), and what to download (urls, fetch)."""

from __future__ import annotations

import click

from scoretag.cli import fetch


@click.group()
def images() -> None:
    """Find images where they are kept, and get the missing ones."""


@images.command()
def scan() -> None:
    """Refresh the image index from what changed since the last scan.

    Lists again only the folders of `[images] sources` whose modification time changed,
    reads again only tar shards and index files whose size or time changed, and drops what
    disappeared. Then prints the images per source and the posts without an image.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from assets.images.find import load_index
    from assets.images.find import scan as scan_index
    from assets.images.summary import by_source, without_image
    from assets.ingest.current import current_posts
    from assets.ingest.paths import posts_files
    from scoretag.cli.common import console, current_profile

    profile = current_profile()
    layout, settings = profile.layout, profile.settings
    posts = current_posts(posts_files(layout), ["md5", "sha512", "file_ext"])
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=True) as bars:
        tasks: dict[str, int] = {}

        def progress(phase: str, done: int, total: int | None) -> None:
            if phase not in tasks:
                tasks[phase] = bars.add_task(f"{phase} re-read", total=total)
            bars.update(tasks[phase], completed=done, total=total)

        try:
            report = scan_index(layout, settings, posts, progress)
        except (FileNotFoundError, ValueError, OSError) as e:
            raise click.ClickException(str(e)) from None
    entries = load_index(layout, settings)
    console.print(
        f"{entries.height:,} images; re-listed {report.folders_listed:,} of "
        f"{report.folders:,} folders, re-read {report.tars_read:,} of {report.tars:,} tar "
        f"shards and {report.listings_read} index files, hashed {report.files_hashed:,} "
        f"files, in {report.seconds:.2f} s"
    )
    for row in by_source(entries).iter_rows(named=True):
        console.print(f"  {row['source']} ({row['kind']}): {row['images']:,}", soft_wrap=True)
    missing = without_image(posts, entries, settings.pool.non_image_exts)
    for row in missing.iter_rows(named=True):
        console.print(f"  {row['site']}: {row['posts']:,} posts without an image")


images.add_command(fetch.urls)
images.add_command(fetch.fetch)
