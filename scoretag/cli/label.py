"""`scoretag label serve|import|export`: the labeling app, and labels in and out as CSV
(pair judgments out as CSV or parquet)."""

from __future__ import annotations

import csv
import threading
from datetime import UTC, datetime
from pathlib import Path

import click
import polars as pl

from assets.labels.store import LabelStore
from assets.pool.paths import pool_path
from orchestration.atomic import atomic_path
from scoretag.cli.common import console, current_profile

COLUMNS = ("post_key", "labeler", "value", "created_at")
SHOWN = 20  # bad rows listed before "and N more"

Row = tuple[str, str, int, str]


@click.group()
def label() -> None:
    """Label pool posts by hand: the web app, CSV in and out."""


@label.command()
@click.option("--host", default=None, help="Address to bind. [default: [labels] host]")
@click.option("--port", type=int, default=None, help="Port. [default: [labels] port]")
@click.option(
    "--token",
    envvar="SCORETAG_LABEL_TOKEN",
    default=None,
    help="Required on every request; needed off loopback. [env SCORETAG_LABEL_TOKEN]",
)
def serve(host: str | None, port: int | None, token: str | None) -> None:
    """Serve the labeling app (one image at a time, keys 1-5; /compare: pairs).

    Stop it with Ctrl-C.
    """
    import uvicorn

    from assets.labels.app import AppConfig, create_app
    from assets.labels.gate import needs_token
    from assets.labels.paths import previews_dir

    profile = current_profile()
    settings = profile.settings.labels
    host, port, token = host or settings.host, port or settings.port, token or None
    pool = pool_path(profile.layout)
    if not pool.is_file():
        raise click.ClickException(f"no rating pool at {pool}: materialize rating_pool first")
    if needs_token(host) and token is None:
        raise click.ClickException(
            f"refusing to serve on {host} without a token: others could reach it. "
            "Give --token T (or SCORETAG_LABEL_TOKEN), or bind to 127.0.0.1"
        )
    config = AppConfig(
        pool_path=pool,
        image_root=profile.layout.images,
        store_path=profile.layout.label_store,
        token=token,
        repeat_share=settings.repeat_share,
        order_seed=profile.settings.pool.seed,
        image_sources=tuple(Path(s.path) for s in profile.settings.images.sources),
        preview_dir=previews_dir(profile.layout),
        preview_long_side=settings.preview_long_side,
        preview_format=settings.preview_format,
        preview_cache_bytes=settings.preview_cache_mb << 20,
        max_pixels=profile.settings.embed.max_pixels,
        random_pair_share=settings.random_pair_share,
        near_duplicate_cosine=profile.settings.head.near_duplicate_cosine,
    )
    app = create_app(config)
    posts = len(app.state.labeling.pool.current().rows)
    console.print(
        f"[bold]scoretag label[/]: {posts} posts from {pool}, labels into "
        f"{profile.layout.label_store}"
    )
    login = "?token=<your token> once" if token else ""
    address = "<this machine's address>" if host in ("0.0.0.0", "::") else host
    if settings.preview_long_side:
        console.print(
            f"Previews: long side {settings.preview_long_side} px, cached in "
            f"{previews_dir(profile.layout)}"
        )
    console.print(f"Open http://{address}:{port}/{login}", soft_wrap=True)
    pooled = pl.read_parquet(pool, columns=["post_key", "image_key"])
    threading.Thread(
        target=attach_pair_inputs, args=(app, profile, pooled), daemon=True, name="pair-inputs"
    ).start()
    uvicorn.run(app, host=host, port=port, log_level="warning")


def attach_pair_inputs(app, profile, pooled: pl.DataFrame) -> None:
    """Image vectors and the active head's scores for compare mode, found while the app
    already serves (reading them needs torch: seconds the labelers need not wait)."""
    from scoretag.cli import pair_inputs

    inputs = pair_inputs.load(profile.layout, profile.settings, pooled)
    app.state.labeling.attach(inputs.scores, inputs.vectors)
    console.print(f"Compare mode (/compare): {inputs.note}")


@label.command(name="import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_labels(file: Path) -> None:
    """Add labels from a CSV (post_key, labeler, value, created_at)."""
    rows, problems = read_labels(file)
    if problems:
        listed = "\n".join(f"  {p}" for p in problems[:SHOWN])
        more = f"\n  and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
        raise click.ClickException(
            f"{file}: {len(problems)} bad row(s), nothing imported:\n{listed}{more}"
        )
    layout = current_profile().layout
    with LabelStore(layout.label_store) as store:
        new = unseen(rows, store.events())
        store.add_many(new, source="import")
    console.print(
        f"Imported {len(new)} labels into {layout.label_store}"
        f" ({len(rows) - len(new)} already there)."
    )
    report_outside_pool(new, pool_path(layout))


PAIR_COLUMNS = (
    "left_key",
    "right_key",
    "choice",
    "winner_key",
    "labeler",
    "created_at",
    "repeat",
    "source",
)


@label.command(name="export")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--pairs",
    "pairs_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write every pair judgment here (.csv or .parquet): left_key, right_key (as "
    "shown), choice (left/right/tie), winner_key (empty for a tie), labeler, created_at, "
    "repeat (a hidden repeat), source (how the pair was drawn).",
)
def export_labels(file: Path | None, pairs_file: Path | None) -> None:
    """Write every label to a CSV FILE, and with --pairs every pair judgment (undone ones
    and skips left out)."""
    from assets.labels.stats import labels

    if file is None and pairs_file is None:
        raise click.UsageError("give FILE, --pairs FILE, or both")
    store_path = current_profile().layout.label_store
    if not store_path.is_file():
        raise click.ClickException(f"no label store at {store_path}: nothing labeled yet")
    with LabelStore(store_path, read_only=True) as store:
        given = labels(store.events()).select(COLUMNS)
        pairs = pair_judgments(store.pair_events())
    if file is not None:
        with atomic_path(file) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(COLUMNS)
            writer.writerows(given.iter_rows())
        console.print(f"Exported {given.height} labels to {file}")
    if pairs_file is not None:
        with atomic_path(pairs_file) as tmp:
            if pairs_file.suffix.lower() == ".parquet":
                pairs.write_parquet(tmp)
            else:
                pairs.write_csv(tmp)
        console.print(f"Exported {pairs.height} pair judgments to {pairs_file}")


def pair_judgments(events: pl.DataFrame) -> pl.DataFrame:
    """Every standing pair choice (repeats included), with its labeler, in order."""
    from assets.labels.pair_stats import choices

    made = choices(events).with_columns(
        winner_key=pl.when(pl.col("choice") == "tie").then(None).otherwise(pl.col("winner"))
    )
    return made.select(PAIR_COLUMNS)


def read_labels(path: Path) -> tuple[list[Row], list[str]]:
    """Every row of a label CSV, checked: (rows, problems), one problem per bad row, by line."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            return [], [f"missing column(s): {', '.join(missing)} (need {', '.join(COLUMNS)})"]
        rows, problems = [], []
        for record in reader:
            row, errors = check_row(record)
            if errors:
                problems.append(f"line {reader.line_num}: {'; '.join(errors)}")
            if row is not None:
                rows.append(row)
    return rows, problems


def check_row(record: dict[str, str | None]) -> tuple[Row | None, list[str]]:
    """One CSV record as a store row, or the reasons it is not one."""
    key, who = (record.get("post_key") or "").strip(), (record.get("labeler") or "").strip()
    value, at = (record.get("value") or "").strip(), (record.get("created_at") or "").strip()
    errors = [] if key else ["post_key is empty"]
    errors += [] if who else ["labeler is empty"]
    if value not in {"1", "2", "3", "4", "5"}:
        errors.append(f"value must be an integer from 1 to 5, got {value!r}")
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        errors.append(f"created_at is not an ISO 8601 timestamp: {at!r}")
    if errors:
        return None, errors
    # A timestamp without a zone is taken as UTC; every stored one is UTC, in one format.
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return (key, who, int(value), moment.astimezone(UTC).isoformat(timespec="milliseconds")), []


def unseen(rows: list[Row], events: pl.DataFrame) -> list[Row]:
    """Rows not already in the store as the same label (so importing twice adds nothing)."""
    from assets.labels.stats import labels

    known = set(labels(events).select(COLUMNS).iter_rows())
    new = []
    for row in rows:
        if row not in known:
            known.add(row)
            new.append(row)
    return new


def report_outside_pool(rows: list[Row], pool: Path) -> None:
    if not pool.is_file():
        console.print(f"No rating pool at {pool} yet: post keys not checked against it.")
        return
    keys = set(pl.read_parquet(pool, columns=["post_key"])["post_key"].to_list())
    outside = sorted({row[0] for row in rows} - keys)
    if outside:
        examples = ", ".join(outside[:5]) + (", ..." if len(outside) > 5 else "")
        console.print(
            f"{sum(r[0] not in keys for r in rows)} of these labels are for "
            f"{len(outside)} posts not in the rating pool (kept): {examples}"
        )
