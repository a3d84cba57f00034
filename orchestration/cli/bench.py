"""`scoretag bench ...`: benchmarks that print what they measured as JSON."""

from __future__ import annotations

import json

import click

from orchestration import benchmarks

JSON_OPTION = click.option(
    "--json/--pretty",
    "as_json",
    default=True,
    help="One JSON object per line (default), or indented JSON.",
)


def _emit(result: dict, as_json: bool) -> None:
    click.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))


@click.group()
def bench() -> None:
    """Run benchmarks; print their figures as JSON."""


@bench.command(name="demo")
@click.option("--seed", default=0, show_default=True)
@click.option("--workers", type=int, default=None, help="Image workers [default: all cores].")
@JSON_OPTION
def bench_demo(seed: int, workers: int | None, as_json: bool) -> None:
    """Time a full demo-data build into a fresh folder."""
    _emit(benchmarks.demo_build(seed=seed, workers=workers), as_json)


@bench.command(name="all")
@JSON_OPTION
def bench_all(as_json: bool) -> None:
    """Every benchmark with its default parameters, one JSON object each."""
    for run in benchmarks.BENCHES.values():
        _emit(run(), as_json)
