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


def _print_demo_evaluation(profile: Profile) -> None:
    """The demo's two evaluation sets compared, as `scoretag evaluate --compare` shows them."""
    from assets.evaluation.evaluate import read_summary
    from assets.evaluation.paths import results_dir
    from scoretag.cli.evaluate import comparisons, options_for, print_evaluations
    from scoretag.demo.evaluation import SETS

    settings = profile.settings.evaluation
    console.rule("Evaluating generated images: two stand-ins for two checkpoints")
    console.print(
        f"{SETS[0]} holds clean demo pictures, {SETS[1]} the same pictures degraded: "
        "`scoretag evaluate --compare` puts them side by side, each difference with its "
        f"{settings.confidence:.0%} interval. The demo's backbone is untrained, so these "
        "scores have no meaning; on real weights this is how a worse checkpoint is told apart.",
        soft_wrap=True,
    )
    summaries = {n: read_summary(results_dir(profile.layout, n)) for n in SETS}
    found = comparisons(profile, list(SETS), (), options_for(settings))
    print_evaluations(profile, summaries, found, True, settings.confidence)


@demo.command(name="run")
@click.option("--workers", type=int, default=None, help="Image workers [default: all cores].")
def run_demo(workers: int | None) -> None:
    """Build the demo data, materialize everything, summarize."""
    from orchestration.definitions import build_defs
    from orchestration.runner import evaluate_sets, run_lineage
    from scoretag.demo.evaluation import SETS as DEMO_SETS

    profile = _demo_profile()
    result = _build(profile, workers)
    defs = build_defs(profile)
    with console.status("materializing every asset on the demo profile...") as status:
        outcome = run_lineage(
            profile,
            defs,
            on_step=status.update,
            labeling=lambda: _simulated_labeling(profile, result),
        )
        if outcome.success:
            evaluated = evaluate_sets(
                profile, defs, list(DEMO_SETS), on_step=status.update, only_stale=True
            )
            outcome.add(evaluated)
    console.rule(f"scoretag demo: profile {profile.name}")
    console.print(demo_data_table(result))
    console.print(image_line(result))
    print_pipeline(profile, outcome)
    if outcome.success:
        _print_demo_evaluation(profile)
    print_where(profile)
    if not outcome.success:
        raise click.ClickException("some runs failed: see above, or the runs page of the UI")
