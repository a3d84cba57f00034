"""The summaries `scoretag run` and `scoretag demo run` print."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from rich.table import Table

from orchestration.cli.common import console
from orchestration.profile import Profile

if TYPE_CHECKING:
    from orchestration.demo.build import DemoBuild
    from orchestration.runner import RunOutcome

UNTRAINED_NOTE = (
    "The {model} backbone of this profile is randomly initialised (untrained): "
    "its embeddings, and any aesthetic score computed from them, carry no quality signal."
)


def _short(value) -> str | None:
    """A metadata value worth a place in a terminal summary, or None."""
    if isinstance(value, bool | int):
        return f"{value:,}" if not isinstance(value, bool) else str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str) and len(value) <= 60 and "\n" not in value:
        return value
    return None


def print_run(outcome: RunOutcome) -> None:
    status = "[green]succeeded[/]" if outcome.success else "[red]failed[/]"
    console.print(f"\n[bold]Run[/] {', '.join(outcome.run_ids)} {status}")
    if not outcome.materializations:
        console.print("No assets were materialized: this profile defines none yet.")
    assets = Table("asset", "metadata", title="Assets", title_justify="left")
    for key, metadata in outcome.materializations.items():
        shown = [f"{k}={s}" for k, v in metadata.items() if (s := _short(v)) is not None]
        assets.add_row(key, ", ".join(shown))
    if outcome.materializations:
        console.print(assets)
    _print_checks(outcome.checks)
    for failure in outcome.failures:
        console.print(f"[red]failed step[/] {failure}")


def _print_checks(checks: list[dict]) -> None:
    if not checks:
        return
    passed = sum(c["passed"] for c in checks)
    console.print(f"[bold]Checks[/]: {passed} of {len(checks)} passed")
    table = Table("asset", "check", "result", "detail", title_justify="left")
    for check in checks:
        result = (
            "[green]passed[/]"
            if check["passed"]
            else ("[yellow]warn[/]" if check["severity"] == "WARN" else "[red]FAILED[/]")
        )
        table.add_row(check["asset"], check["check"], result, check["description"][:90])
    console.print(table)


def demo_data_table(build: DemoBuild) -> Table:
    table = Table(
        "site",
        "source",
        "files",
        "post records",
        "bad records",
        "bytes",
        title=f"Demo data (seed {build.manifest['seed']}, built in {build.seconds:.1f} s)",
        title_justify="left",
    )
    rows: dict[tuple[str, str], Counter] = {}
    for entry in build.manifest["files"]:
        if entry["kind"] == "image":
            continue
        counter = rows.setdefault((entry["site"], entry["kind"]), Counter())
        counter.update(
            files=1, records=entry["records"], skipped=entry["skipped"], bytes=entry["bytes"]
        )
    for (site, kind), c in sorted(rows.items()):
        table.add_row(
            site, kind, str(c["files"]), f"{c['records']:,}", str(c["skipped"]), f"{c['bytes']:,}"
        )
    return table


def image_line(build: DemoBuild) -> str:
    images = build.images
    formats = Counter(images["file_ext"].to_list())
    special = Counter(s for s in images["special"].to_list() if s)
    unusable = int((~images["usable"]).sum())
    return (
        f"{images.height} images ({', '.join(f'{k} {v}' for k, v in sorted(formats.items()))});"
        f" unusual on purpose: {', '.join(f'{k} {v}' for k, v in sorted(special.items()))};"
        f" {unusable} unusable (huge or corrupt)"
    )


def print_where(profile: Profile) -> None:
    layout = profile.layout
    places = {
        "raw dumps": layout.inbox,
        "images": layout.images,
        "stage data": layout.data,
        "catalog": layout.catalog,
        "dagster home": layout.dagster_home,
    }
    if profile.settings.demo is not None:
        places["demo ground truth"] = layout.demo
    console.print("[bold]Where things are[/]")
    for label, path in places.items():
        # soft_wrap: a path is copied from the terminal, so it is never broken by a newline
        console.print(f"  {label:<18} {path}", soft_wrap=True)
    backbone = profile.settings.backbone
    if not backbone.trained:
        console.print(f"[yellow]{UNTRAINED_NOTE.format(model=backbone.model)}[/]")
    console.print(
        "Open the UI: [bold]make ui[/] (or `scoretag --profile "
        f"{profile.name} ui`), then http://127.0.0.1:3000/asset-groups",
        soft_wrap=True,
    )
