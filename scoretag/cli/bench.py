"""`scoretag bench ...`: benchmarks that print what they measured as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import click

JSON_OPTION = click.option(
    "--json/--pretty",
    "as_json",
    default=True,
    help="One JSON object per line (default), or indented JSON.",
)


def workdir_option(what: str):
    """--workdir: where a bench writes `what` (a sentence's object, e.g. "the CSV")."""
    return click.option(
        "--workdir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help=f"Where to write {what} [default: the system temp folder].",
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
    from scoretag.benchmarks.demo import demo_build

    _emit(demo_build(seed=seed, workers=workers), as_json)


@bench.command(name="ingest")
@click.option("--posts", default=2_000_000, show_default=True, help="Rows of the e621 export.")
@click.option("--seed", default=0, show_default=True)
@workdir_option("the CSV")
@JSON_OPTION
def bench_ingest(posts: int, seed: int, workdir: Path | None, as_json: bool) -> None:
    """Ingest + normalize an e621 export vs DuckDB's plain COPY."""
    from scoretag.benchmarks.ingest import ingest_bench

    _emit(ingest_bench(posts=posts, seed=seed, workdir=workdir), as_json)


@bench.command(name="images")
@click.option("--files", default=1_000_000, show_default=True, help="Stand-in image files.")
@click.option("--tars", default=10, show_default=True, help="Tar shards among them.")
@workdir_option("the image folders")
@JSON_OPTION
def bench_images(files: int, tars: int, workdir: Path | None, as_json: bool) -> None:
    """The image index: first scan vs a rescan after 1% new files; no scan per partition."""
    from scoretag.benchmarks.images import images_bench

    _emit(images_bench(files=files, tars=tars, workdir=workdir), as_json)


@bench.command(name="embed")
@click.option(
    "--model",
    default="scoretag-tiny",
    show_default=True,
    help="open_clip architecture (random weights).",
)
@click.option(
    "--images", default=512, show_default=True, help="JPEG files, long sides 256 to 2048 px."
)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N, mps or auto.")
@click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "fp16", "bf16"]),
    default="auto",
    show_default=True,
    help="The project's precision; auto: the reference's (fp16 on CUDA, as clip.load; else fp32).",
)
@click.option("--batch-size", default=64, show_default=True)
@click.option("--workers", type=int, default=None, help="Decoding workers [default: all cores].")
@click.option(
    "--repeats", default=3, show_default=True, help="Timings of each path; the median is reported."
)
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--jpeg-draft",
    is_flag=True,
    help="Decode JPEGs at a reduced scale, as [embed] jpeg_draft does: faster, inexact.",
)
@JSON_OPTION
def bench_embed(
    model: str,
    images: int,
    device: str,
    precision: str,
    batch_size: int,
    workers: int | None,
    repeats: int,
    seed: int,
    jpeg_draft: bool,
    as_json: bool,
) -> None:
    """The embedding path vs a LAION-style one-image-at-a-time loop, same model and files."""
    from scoretag.benchmarks.embed import embed_bench

    result = embed_bench(
        model=model,
        images=images,
        device=device,
        precision=precision,
        batch_size=batch_size,
        workers=workers,
        repeats=repeats,
        seed=seed,
        jpeg_draft=jpeg_draft,
    )
    _emit(result, as_json)


@bench.command(name="head")
@click.option("--n", "n", default=60_000, show_default=True, help="Planted embeddings in all.")
@click.option("--dim", default=768, show_default=True, help="Embedding width.")
@click.option("--test", default=10_000, show_default=True, help="Rows held out as the test set.")
@click.option("--step", default=250, show_default=True, help="Labels added per batch.")
@click.option("--budget", default=10_000, show_default=True, help="Labels at the end.")
@click.option("--seed", default=0, show_default=True)
@JSON_OPTION
def bench_head(
    n: int, dim: int, test: int, step: int, budget: int, seed: int, as_json: bool
) -> None:
    """Labels the aesthetic head needs: random vs stratified vs active sampling, planted data."""
    from scoretag.benchmarks.head import head_bench

    _emit(head_bench(n=n, dim=dim, test=test, step=step, budget=budget, seed=seed), as_json)


@bench.command(name="labels")
@click.option("--n", "n", default=14_000, show_default=True, help="Planted embeddings in all.")
@click.option("--dim", default=256, show_default=True, help="Embedding width.")
@click.option("--test", default=4_000, show_default=True, help="Rows held out as the test set.")
@click.option(
    "--budgets",
    default="250,500,1000,2000,4000",
    show_default=True,
    help="Judgments each head is trained on, comma-separated.",
)
@click.option("--seed", default=0, show_default=True, help="The first planted set's seed.")
@click.option("--seeds", default=3, show_default=True, help="Planted sets the curves average.")
@JSON_OPTION
def bench_labels(
    n: int, dim: int, test: int, budgets: str, seed: int, seeds: int, as_json: bool
) -> None:
    """Ratings or pairs: which reaches 95% of the best head with fewer judgments."""
    from scoretag.benchmarks.labels import labels_bench

    try:
        steps = [int(b) for b in budgets.split(",") if b.strip()]
    except ValueError:
        raise click.BadParameter(f"{budgets!r}: give whole numbers, comma-separated") from None
    if not steps or min(steps) < 10:
        raise click.BadParameter("give budgets of 10 judgments or more", param_hint="--budgets")
    if seeds < 1:
        raise click.BadParameter("give 1 or more", param_hint="--seeds")
    result = labels_bench(n=n, dim=dim, test=test, budgets=steps, seed=seed, seeds=seeds)
    _emit(result, as_json)


@bench.command(name="catalog")
@click.option("--posts", default=1_000_000, show_default=True, help="Posts, one image each.")
@click.option("--dim", default=768, show_default=True, help="Embedding width.")
@click.option("--seed", default=0, show_default=True)
@workdir_option("the shards and the catalog")
@JSON_OPTION
def bench_catalog(posts: int, dim: int, seed: int, workdir: Path | None, as_json: bool) -> None:
    """Scoring the catalog from cached embeddings (all, then 1% new) vs a bare matmul."""
    from scoretag.benchmarks.catalog import catalog_bench

    _emit(catalog_bench(posts=posts, dim=dim, seed=seed, workdir=workdir), as_json)


@bench.command(name="daily")
@click.option("--posts", default=10_000_000, show_default=True, help="Posts in the catalog.")
@click.option("--new", default=100_000, show_default=True, help="Posts the day brings.")
@click.option("--dim", default=32, show_default=True, help="Synthetic embedding width.")
@click.option("--seed", default=0, show_default=True)
@workdir_option("the storage root")
@JSON_OPTION
def bench_daily(
    posts: int, new: int, dim: int, seed: int, workdir: Path | None, as_json: bool
) -> None:
    """A scheduled day (ingest, embed, normalize, score, export) vs building the catalog."""
    from scoretag.benchmarks.daily import daily_bench

    _emit(daily_bench(posts=posts, new=new, dim=dim, seed=seed, workdir=workdir), as_json)


@bench.command(name="captions")
@click.option("--posts", default=1_000_000, show_default=True, help="Synthetic catalog rows.")
@click.option("--shard-size", default=10_000, show_default=True, help="Posts per shard.")
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--style",
    default="v6",
    show_default=True,
    help="Caption vocabulary (animagine, noobai: their families' cut-points and tags timed too).",
)
@workdir_option("the shards")
@JSON_OPTION
def bench_captions(
    posts: int, shard_size: int, seed: int, style: str, workdir: Path | None, as_json: bool
) -> None:
    """Captions with every rule, written as parquet shards: captions per second."""
    from scoretag.benchmarks.captions import captions_bench

    result = captions_bench(
        posts=posts, shard_size=shard_size, seed=seed, workdir=workdir, style=style
    )
    _emit(result, as_json)


@bench.command(name="all")
@JSON_OPTION
def bench_all(as_json: bool) -> None:
    """Every benchmark with its default parameters, one JSON object each."""
    from scoretag.benchmarks import BENCHES

    for run in BENCHES.values():
        _emit(run(), as_json)
