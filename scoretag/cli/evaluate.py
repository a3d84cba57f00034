"""`scoretag evaluate PATH_OR_SET... [--compare]`: folders of generated images scored by the
aesthetic head, each as one run of the image_evaluations asset (so the UI shows it), then
printed side by side, each difference from the first set with its confidence interval."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich import box
from rich.markup import escape
from rich.table import Table

from scoretag.cli.common import console, current_profile

if TYPE_CHECKING:
    from assets.evaluation.report import Comparison, Options
    from orchestration.profile import Profile
    from orchestration.settings import EvaluationSettings

SHOWN_FAILURES = 5


def _set_names(items: tuple[str, ...], name: str | None) -> list[str]:
    """Each item as a set name: a folder is registered (linked under evaluations/, named by
    --name or after the folder); anything else must name a set already there."""
    from assets.evaluation.paths import SetConflict, register, set_root
    from assets.evaluation.sets import check_name, name_for

    layout = current_profile().layout
    if name is not None and len(items) != 1:
        raise click.UsageError("--name names one set: give one PATH with it")
    names = []
    for item in items:
        path = Path(item)
        try:
            if path.is_dir():
                chosen = check_name(name) if name else name_for(path)
                register(layout, path, chosen)
            else:
                chosen = check_name(item)
                if not set_root(layout, chosen).is_dir():
                    raise ValueError(
                        f"{item!r} is neither a folder nor an evaluation set "
                        f"(the sets are the folders in {set_root(layout, chosen).parent})"
                    )
        except (SetConflict, ValueError) as e:
            raise click.ClickException(str(e)) from None
        if chosen in names:
            raise click.ClickException(f"the set {chosen!r} is given twice")
        names.append(chosen)
    return names


def options_for(
    settings: EvaluationSettings,
    good_bucket: int | None = None,
    resamples: int | None = None,
    seed: int | None = None,
) -> Options:
    """The comparison's options: the profile's [evaluation] settings, unless given."""
    from assets.evaluation.report import Options

    return Options(
        good_bucket or settings.good_bucket,
        resamples or settings.resamples,
        settings.confidence,
        settings.seed if seed is None else seed,
    )


def comparisons(
    profile: Profile, names: list[str], heads: tuple[str, ...], options: Options
) -> list[Comparison]:
    """The sets side by side under the active head and each head named."""
    from assets.captions.paths import calibration_record
    from assets.embeddings.assets import STAGE
    from assets.evaluation.evaluate import Caches, scored_sets
    from assets.evaluation.report import compare_sets
    from assets.evaluation.scoring import NoHead, frozen_calibrations, heads_for
    from assets.head.paths import registry
    from orchestration.backbone import identity, provenance

    layout, settings = profile.layout, profile.settings
    caches = Caches.at(
        layout.shared_stage_dir(STAGE),
        identity(settings.backbone),
        provenance(settings.backbone),
    )
    try:
        chosen = heads_for(registry(layout), caches.images.identity, heads)
    except (NoHead, KeyError) as e:
        raise click.ClickException(str(e.args[0] if isinstance(e, KeyError) else e)) from None
    calibrations = frozen_calibrations(
        lambda head: calibration_record(layout, head), [h.version for h in chosen]
    )
    return [
        compare_sets(scored_sets(layout, names, caches, head, calibrations[head.version]), options)
        for head in chosen
    ]


def _figures_table(comparison) -> Table:
    table = Table(
        "figure",
        *[escape(s.name) for s in comparison.sets],
        box=box.SIMPLE_HEAD,
        title=f"Head {comparison.head}",
        title_justify="left",
    )
    for row in comparison.table():
        cells = [row.get(s.name) for s in comparison.sets]
        table.add_row(row["figure"], *("-" if c is None else f"{c:,}" for c in cells))
    return table


def _differences_tables(comparison, confidence: float) -> list[Table]:
    """One table per set compared with its base: each figure's difference, other - base."""
    from assets.evaluation.report import difference_rows

    tables: dict[tuple[str, str], Table] = {}
    for row in difference_rows(comparison):
        pair = (row["base_set"], row["other_set"])
        if pair not in tables:
            tables[pair] = Table(
                box=box.SIMPLE_HEAD, title=escape(f"{pair[1]} - {pair[0]}"), title_justify="left"
            )
            for column in ("figure", "base", "other", "diff", f"{confidence:.0%} CI", "pairs"):
                tables[pair].add_column(column, no_wrap=True)
            tables[pair].add_column("real", no_wrap=True)
        tables[pair].add_row(
            row["metric"],
            f"{row['base']:.4f}",
            f"{row['other']:.4f}",
            f"{row['difference']:+.4f}",
            row["interval"],
            row["paired"],
            "[green]yes[/]" if row["real"] == "yes" else "no",
        )
    return list(tables.values())


def _print_set(name: str, summary: dict, failures: Path) -> None:
    import polars as pl

    console.print(
        escape(
            f"{name}: {summary['scored']:,} of {summary['found']:,} images scored, "
            f"{summary['failed']:,} failed ({summary['root']})"
        ),
        soft_wrap=True,
    )
    if failures.is_file():
        rows = pl.read_parquet(failures)
        shown = rows.head(SHOWN_FAILURES).select("source", "reason", "detail")
        for source, reason, detail in shown.iter_rows():
            console.print(escape(f"  {reason:<11} {source}  {detail}"), soft_wrap=True)
        if rows.height > SHOWN_FAILURES:
            console.print(escape(f"  and {rows.height - SHOWN_FAILURES:,} more in {failures}"))


def print_evaluations(
    profile: Profile,
    summaries: dict[str, dict],
    comparisons: list[Comparison],
    compare: bool,
    confidence: float,
) -> None:
    """Each set's counts and failures, the sets' figures side by side under each head, and,
    with `compare`, each difference from the base with its interval."""
    from assets.evaluation.paths import results_dir

    for n, summary in summaries.items():
        _print_set(n, summary, results_dir(profile.layout, n) / "failures.parquet")
    for comparison in comparisons:
        console.print(_figures_table(comparison))
        if compare:
            for table in _differences_tables(comparison, confidence):
                console.print(table)
            if comparison.undecided:
                console.print(
                    "[yellow]No difference is shown to be real[/]: the sets are too small (or "
                    "too alike) for any interval to exclude zero."
                )
    if not profile.settings.backbone.trained:
        console.print(
            "[yellow]The backbone has random weights[/]: these scores carry no meaning "
            "(set \\[backbone] pretrained or checkpoint)."
        )


@click.command()
@click.argument("items", nargs=-1, required=True, metavar="PATH_OR_SET...")
@click.option("--name", default=None, help="The set's name (one PATH). [default: the folder's]")
@click.option(
    "--compare",
    is_flag=True,
    help="Compare the sets: each difference from the first set, with its confidence interval.",
)
@click.option(
    "--head",
    "heads",
    multiple=True,
    metavar="VERSION",
    help="Also compare under this head (a version or unique prefix); repeatable.",
)
@click.option(
    "--good-bucket",
    type=click.IntRange(1, 9),
    default=None,
    help="The good image rate counts images in this bucket and up. "
    "[default: [evaluation] good_bucket]",
)
@click.option(
    "--resamples",
    type=click.IntRange(100),
    default=None,
    help="Bootstrap resamples per difference. [default: [evaluation] resamples]",
)
@click.option("--seed", type=int, default=None, help="Bootstrap seed. [default: [evaluation] seed]")
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the sets' score histograms, overlaid, to this PNG file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead.")
def evaluate(
    items: tuple[str, ...],
    name: str | None,
    compare: bool,
    heads: tuple[str, ...],
    good_bucket: int | None,
    resamples: int | None,
    seed: int | None,
    plot: Path | None,
    as_json: bool,
) -> None:
    """Score and compare folders of generated images.

    Each PATH (a folder of images, in sub-folders per prompt or seed if you like; prompts
    from a `<image>.txt` beside each image or a prompts.jsonl) becomes an evaluation set,
    linked as $SCORETAG_HOME/evaluations/<name>, and is evaluated by one run of the
    image_evaluations asset: images embedded once (cached by content), scored by the active
    head, CLIP score against their prompts, diversity within each prompt. A SET names one
    evaluated before. With --compare, every other set is compared with the first; pairs of
    images with the same prompt and seed (or the same file name) are compared as pairs.
    """
    from assets.evaluation.evaluate import read_summary
    from assets.evaluation.paths import results_dir
    from orchestration.definitions import build_defs
    from orchestration.runner import evaluate_sets
    from scoretag.cli.progress import run_status
    from scoretag.cli.summary import print_runs

    profile = current_profile()
    settings = profile.settings.evaluation
    names = _set_names(items, name)
    if compare and len(names) < 2:
        raise click.UsageError("--compare needs two sets or more")
    if as_json:  # stdout is the JSON document alone
        outcome = evaluate_sets(profile, build_defs(profile), names)
    else:
        with run_status(f"evaluating {len(names)} set(s)...") as status:
            outcome = evaluate_sets(profile, build_defs(profile), names, on_step=status.update)
    if not outcome.success:
        print_runs(outcome)
        raise click.ClickException("evaluation failed: see above, or the runs page of the UI")
    options = options_for(settings, good_bucket, resamples, seed)
    found = comparisons(profile, names, heads, options)
    summaries = {n: read_summary(results_dir(profile.layout, n)) for n in names}
    if plot is not None:
        plot.write_bytes(found[0].histogram_png())
    if as_json:
        document = {
            "sets": {
                n: {k: summaries[n][k] for k in ("root", "found", "scored", "failed", "prompts")}
                for n in names
            },
            "comparisons": [c.to_json() for c in found],
            "runs": outcome.run_ids,
        }
        click.echo(json.dumps(document, indent=2))
        return
    print_evaluations(profile, summaries, found, compare, options.confidence)
    if plot is not None:
        console.print(escape(f"Histograms written to {plot}"))
