"""`scoretag info`."""

from __future__ import annotations

import click
from rich.table import Table

from orchestration.cli.common import console, current_profile
from orchestration.storage import SITES


@click.command()
def info() -> None:
    """Show the active profile, its settings and where it keeps its data."""
    profile = current_profile()
    layout, backbone = profile.layout, profile.settings.backbone
    table = Table(show_header=False, box=None)
    table.add_row("profile", f"{profile.name}: {profile.settings.description}")
    table.add_row("storage root", str(layout.home))
    table.add_row("dagster home", str(layout.dagster_home))
    for site in SITES:
        inbox = layout.site_inbox(site)
        files = sum(1 for p in inbox.glob("*") if p.is_file()) if inbox.is_dir() else 0
        table.add_row(f"inbox/{site}", f"{inbox}  ({files} files)")
    table.add_row("image root", str(layout.images))
    table.add_row("stage data", str(layout.data))
    table.add_row("catalog", str(layout.catalog))
    table.add_row("label store", str(layout.label_store))
    source = backbone.checkpoint or backbone.pretrained or "random init (untrained)"
    table.add_row(
        "backbone",
        f"{backbone.model} ({source}), {backbone.device}, "
        f"{backbone.precision}, batch {backbone.batch_size}",
    )
    table.add_row("pools", ", ".join(f"{k}={v}" for k, v in profile.pool_limits.items()))
    console.print(table)
