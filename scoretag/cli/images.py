"""`scoretag images`: the image index (scan), and what to download (urls, fetch)."""

from __future__ import annotations

import click

from scoretag.cli import fetch


@click.group()
def images() -> None:
    """Find images where they are kept, and get the missing ones."""


@images.command()
def scan() -> None:
    """Refresh the image index from what changed since the last scan."""
    raise click.ClickException("not implemented yet")


images.add_command(fetch.urls)
images.add_command(fetch.fetch)
