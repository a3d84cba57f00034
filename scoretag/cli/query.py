"""`scoretag query`: the named queries of `sql/queries/`, or the user's own SQL, run read-only
over the scored catalog."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
import pyarrow as pa
import pyarrow.parquet as pq
from rich.markup import escape
from rich.table import Table

from orchestration.atomic import atomic_path
from scoretag.cli.common import console, current_profile

FORMATS = ("table", "csv", "json", "parquet")
MAX_TABLE_ROWS = 100


def _parse_params(pairs: tuple[str, ...]) -> dict[str, str]:
    given: dict[str, str] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise click.ClickException(f"--param takes KEY=VALUE, not {pair!r}")
        given[key.strip()] = value
    return given


def _format_for(fmt: str | None, out: Path | None) -> str:
    """The output format: as given, else the --out file's extension, else a table."""
    if fmt:
        return fmt
    if out is None:
        return "table"
    suffix = out.suffix.lower().lstrip(".")
    if suffix in FORMATS[1:]:
        return suffix
    raise click.ClickException(
        f"cannot tell the format of {out.name} from its extension: give --format csv, json or "
        "parquet"
    )


def _plain(value: Any) -> Any:
    """A value as JSON can hold it: timestamps as ISO text, NaN and infinities as null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return value


def to_json(table: pa.Table) -> str:
    """The rows as a JSON array of objects."""
    return json.dumps([_plain(row) for row in table.to_pylist()], indent=2, ensure_ascii=False)


def to_csv(table: pa.Table) -> str:
    """The rows as CSV with a header; a list or struct cell (tags...) is written as JSON."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.column_names)
    for row in table.to_pylist():
        cells = []
        for value in row.values():
            plain = _plain(value)
            if plain is None:
                cells.append("")
            elif isinstance(plain, bool):
                cells.append("true" if plain else "false")
            elif isinstance(plain, list | dict):
                cells.append(json.dumps(plain, ensure_ascii=False))
            else:
                cells.append(plain)
        writer.writerow(cells)
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return "[dim]null[/]"
    if isinstance(value, float):
        return repr(round(value, 4)) if math.isfinite(value) else str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, list):
        text = escape(", ".join(str(v) for v in value[:8]))
        return f"{text}, … ({len(value)})" if len(value) > 8 else text
    return escape(str(value))


def print_table(table: pa.Table, title: str | None = None) -> None:
    """At most MAX_TABLE_ROWS rows as a rich table, then how many were left out."""
    if table.num_columns == 0:
        console.print("(no result)")
        return
    view = Table(title=title, title_justify="left")
    for name in table.column_names:
        # Folded, not cut short with an ellipsis: a narrow terminal still shows every value.
        view.add_column(escape(name), overflow="fold")
    for row in table.slice(0, MAX_TABLE_ROWS).to_pylist():
        view.add_row(*(_cell(v) for v in row.values()))
    console.print(view)
    hidden = table.num_rows - MAX_TABLE_ROWS
    if hidden > 0:
        console.print(
            f"… {hidden} more rows (of {table.num_rows}); --format csv|json|parquet gives them all"
        )
    elif table.num_rows == 0:
        console.print("(no rows)")


def _literal(value: Any) -> str:
    """A default as the query file's header writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(value)


def print_list(queries: dict) -> None:
    view = Table("name", "description", "parameters (= default: help)", title="Named queries")
    for query in queries.values():
        params = "\n".join(
            escape(f"{name} = {_literal(default)}: {help_}")
            for name, (default, help_) in query.params.items()
        )
        view.add_row(query.name, escape(query.description), params or "[dim]none[/]")
    console.print(view)
    console.print("Run one with `scoretag query NAME [--param KEY=VALUE ...]`.")


def write(table: pa.Table, fmt: str, out: Path | None) -> None:
    """The table in `fmt`, to `out` (written whole or not at all) or to stdout."""
    if fmt == "table":
        print_table(table)
        return
    if out is None:
        text = to_csv(table) if fmt == "csv" else to_json(table)
        click.echo(text, nl=not text.endswith("\n"))
        return
    with atomic_path(out) as tmp:
        if fmt == "parquet":
            pq.write_table(table, tmp)
        else:
            tmp.write_text(to_csv(table) if fmt == "csv" else to_json(table) + "\n")
    console.print(f"Wrote {table.num_rows} rows to {out}", soft_wrap=True)


@click.command()
@click.argument("name", required=False)
@click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A parameter of the named query (repeatable); --list shows them.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="Output format. [default: from --out's extension, else table]",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the result to this file instead of stdout (parquet needs one).",
)
@click.option("--list", "list_", is_flag=True, help="List the named queries and their parameters.")
@click.option("--sql", metavar="SQL", default=None, help="Run this SQL instead (read-only).")
def query(
    name: str | None,
    params: tuple[str, ...],
    fmt: str | None,
    out: Path | None,
    list_: bool,
    sql: str | None,
) -> None:
    """Named or ad-hoc read-only SQL over the catalog.

    \b
    scoretag query --list
    scoretag query top_posts --param limit=5 --param site=danbooru
    scoretag query tag_scores -p order=bottom --out worst_tags.csv
    scoretag query --sql "SELECT * FROM site_summary" --format json

    The catalog (tables posts, heads, scores, calibrations; views catalog, site_summary,
    head_summary) is opened read-only: statements that write, and file access (COPY TO,
    ATTACH, read_csv), are refused.
    """
    from assets.catalog.queries import bind, load_queries, run_adhoc

    chosen = [what for what, on in (("NAME", name), ("--list", list_), ("--sql", sql)) if on]
    if len(chosen) != 1:
        raise click.UsageError("give exactly one of a query NAME, --list or --sql")
    if params and not name:
        raise click.UsageError("--param goes with a named query")
    try:
        queries = load_queries()
    except ValueError as e:
        raise click.ClickException(f"a query file is malformed: {e}") from None
    if list_:
        print_list(queries)
        return
    fmt = _format_for(fmt, out)
    if fmt == "parquet" and out is None:
        raise click.ClickException("--format parquet needs --out FILE")
    if fmt == "table" and out is not None:
        raise click.ClickException("--format table prints to the terminal: drop --out")

    if name is not None:
        if name not in queries:
            raise click.ClickException(
                f"unknown query {name!r}: choose one of {', '.join(queries)} (see --list)"
            )
        text = queries[name].sql
        try:
            values = bind(queries[name], _parse_params(params))
        except ValueError as e:
            raise click.ClickException(str(e)) from None
    else:
        text, values = sql, {}

    profile = current_profile()
    try:
        table = run_adhoc(
            profile.layout.catalog,
            text,
            values,
            profile.settings.catalog.lock_timeout_s,
            # stderr: stdout may be the CSV or JSON the user is piping on
            on_wait=lambda message: click.echo(f"{message} (Ctrl-C to stop)", err=True),
        )
    except (OSError, ValueError) as e:  # PermissionError, FileNotFoundError, CatalogBusy
        raise click.ClickException(str(e)) from None
    write(table, fmt, out)
