"""`scoretag demo build` and `scoretag demo run`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from orchestration.profile import Profile
from scoretag.cli.common import console, current_profile
from scoretag.cli.summary import demo_data_table, image_line, print_pipeline, print_where

if TYPE_CHECKING:
    from scoretag.demo.build import DemoBuild


@click.group()
def demo() -> None:
    """Build the bundled demo dataset and run the pipeline on it."""


def _demo_profile() -> Profile:
    profile = current_profile()
    if profile.settings.demo is None:
        raise click.ClickException(
            f"the {profile.name!r} profile has no demo data: use --profile demo"
        )
    return profile


def _build(profile: Profile, workers: int | None) -> DemoBuild:
    from scoretag.demo.build import build_demo

    with console.status("building the demo dataset (raw dumps for four sites, images)..."):
        return build_demo(profile.layout, profile.settings.demo, workers=workers)


@demo.command()
@click.option("--workers", type=int, default=None, help="Image workers [default: all cores].")
def build(workers: int | None) -> None:
    """Generate the demo dumps and images (seeded, offline)."""
    profile = _demo_profile()
    result = _build(profile, workers)
    console.print(demo_data_table(result))
    console.print(image_line(result))
    console.print(f"Written under {profile.layout.home}")


def _simulated_labeling(profile: Profile, build: DemoBuild) -> None:
    """The demo's labelers rate the pool through the labeling app's API."""
    import polars as pl

    from assets.pool.paths import pool_path
    from scoretag.demo.labeling import labeling_app, simulate

    layout = profile.layout
    seed = profile.settings.demo.seed
    with labeling_app(pool_path(layout), layout.images, layout.label_store, seed) as url:
        simulate(url, pl.read_parquet(pool_path(layout)), build.images)


@demo.command(name="run")
@click.option("--workers", type=int, default=None, help="Image workers [default: all cores].")
def run_demo(workers: int | None) -> None:
    """Build the demo data, materialize everything, summarize."""
    from orchestration.definitions import build_defs
    from orchestration.runner import run_lineage

    profile = _demo_profile()
    result = _build(profile, workers)
    with console.status("materializing every asset on the demo profile...") as status:
        outcome = run_lineage(
            profile,
            build_defs(profile),
            on_step=status.update,
            labeling=lambda: _simulated_labeling(profile, result),
        )
    console.rule(f"scoretag demo: profile {profile.name}")
    console.print(demo_data_table(result))
    console.print(image_line(result))
    print_pipeline(profile, outcome)
    print_where(profile)
    if not outcome.success:
        raise click.ClickException("some runs failed: see above, or the runs page of the UI")
