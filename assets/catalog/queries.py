"""The named queries of `sql/queries/`, and read-only SQL over the catalog.

Each query file opens with a comment header that says what it is and which parameters it
takes, for `scoretag query --list` to show and `bind` to check:

    -- name: top_posts
    -- description: The best-scored posts of each site under the active head.
    -- param: limit = 20 : posts per site
    -- param: site = '' : only this site ('' = all)

A default is an integer, a float, a quoted string ('it''s' escapes a quote) or true/false; its
type is the type a value given on the command line is converted to. Python never builds SQL:
the values are bound as DuckDB `$name` parameters.

The catalog is opened read-only, and with DuckDB's external access turned off. Read-only alone
refuses writes to the catalog itself, but still lets a statement write files (`COPY ... TO`,
`EXPORT DATABASE`) and attach another database file read-write (`ATTACH 'x.duckdb'
(READ_WRITE)`); without external access DuckDB touches no file but the catalog, so those are
refused too (and so are `read_csv`/`read_parquet` of other files, the price of that).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from assets.catalog import lock
from assets.catalog.statements import SQL_DIR

QUERIES_DIR = SQL_DIR / "queries"

HEADER_KEYS = ("name", "description", "param")

# `-- key: value`. The header's first comment lines are such keys; the first line that is not
# one starts free text (which may say `word:` as prose). A key-like line among the keys must be
# a known key, so a typo such as `-- parm:` is an error, not a silently ignored line.
_KEY_LINE = re.compile(r"^--\s*([a-z_]+):(?:\s+(.*))?$")
_PARAM = re.compile(r"^([A-Za-z_]\w*)\s*=\s*(.*)$")
_IDENTIFIER = re.compile(r"^[A-Za-z_]\w*$")
_INTEGER = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+(\.\d*)?[eE][+-]?\d+)$")
# What may hide a `$name` that is not a parameter: comments and string literals.
_NOT_CODE = re.compile(r"--[^\n]*|'(?:[^']|'')*'")
_PLACEHOLDER = re.compile(r"\$([A-Za-z_]\w*)")

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")

READ_ONLY_MESSAGE = (
    "the catalog is opened read-only: writes are refused, and so are file access beyond the "
    "catalog (COPY ... TO, EXPORT DATABASE, ATTACH, reading other files) and changing settings"
)
# What DuckDB says when it refuses one of those (the exception classes alone are too broad:
# InvalidInputException is also a bad argument).
_REFUSALS = ("read-only", "configuration has been locked", "disabled by configuration")


@dataclass
class NamedQuery:
    """One file of `sql/queries/`: its header, and the SQL to run."""

    name: str
    description: str
    # parameter name -> (default, help); the default's type is the parameter's type
    params: dict[str, tuple[Any, str]]
    sql: str


def parse_literal(text: str) -> tuple[Any, str]:
    """Split a header default off the front of `text`: (value, the rest of the text).

    Raises ValueError when `text` does not start with an integer, float, quoted string or
    true/false.
    """
    text = text.strip()
    if text.startswith("'"):
        # A quoted string may itself hold ':' or spaces, so it is scanned, not split.
        i = 1
        while True:
            end = text.find("'", i)
            if end < 0:
                raise ValueError(f"unterminated string {text!r}")
            if text[end + 1 : end + 2] == "'":
                i = end + 2
                continue
            return text[1:end].replace("''", "'"), text[end + 1 :]
    token, _, rest = text.partition(" ")
    token, colon, after = token.partition(":")
    rest = colon + after + (" " + rest if rest else "")
    if token.lower() in ("true", "false"):
        return token.lower() == "true", rest
    if _INTEGER.match(token):
        return int(token), rest
    if _FLOAT.match(token):
        return float(token), rest
    raise ValueError(f"{token!r} is not an integer, float, quoted string or true/false")


def _parse_param(value: str) -> tuple[str, Any, str]:
    """`name = default : help` -> (name, default, help)."""
    match = _PARAM.match(value)
    if not match:
        raise ValueError("expected `name = default : help`")
    name, rest = match.groups()
    default, rest = parse_literal(rest)
    rest = rest.strip()
    if not rest.startswith(":") or not rest[1:].strip():
        raise ValueError("expected `: help` after the default")
    return name, default, rest[1:].strip()


def parse_query(path: Path) -> NamedQuery:
    """Read one query file. A malformed header raises ValueError naming the file and line."""
    text = path.read_text()
    lines = text.splitlines()
    header: dict[str, str] = {}
    name_line = 1
    params: dict[str, tuple[Any, str]] = {}
    end = 0
    in_keys = True
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped.startswith("--"):
            break
        end = number
        where = f"{path}:{number}"
        match = _KEY_LINE.match(stripped)
        if not in_keys or not match:
            in_keys = False
            if match and match.group(1) in HEADER_KEYS:
                raise ValueError(f"{where}: `{match.group(1)}:` comes after the header's free text")
            continue
        key, value = match.group(1), (match.group(2) or "").strip()
        if key not in HEADER_KEYS:
            raise ValueError(
                f"{where}: unknown header key {key!r} (known: {', '.join(HEADER_KEYS)})"
            )
        if not value:
            raise ValueError(f"{where}: `{key}:` has no value")
        if key == "param":
            try:
                name, default, help_ = _parse_param(value)
            except ValueError as e:
                raise ValueError(f"{where}: malformed param line {stripped!r}: {e}") from None
            if name in params:
                raise ValueError(f"{where}: parameter {name!r} is declared twice")
            params[name] = (default, help_)
        elif key in header:
            raise ValueError(f"{where}: `{key}:` is given twice")
        else:
            header[key] = value
            name_line = number if key == "name" else name_line
    for key in ("name", "description"):
        if key not in header:
            raise ValueError(f"{path}:{end + 1}: the header has no `-- {key}:` line")
    name = header["name"]
    if not _IDENTIFIER.match(name) or name != path.stem:
        raise ValueError(f"{path}:{name_line}: the query's name {name!r} must be the file's name")
    sql = text
    if not "\n".join(lines[end:]).strip():
        raise ValueError(f"{path}:{end + 1}: the file has a header but no SQL")
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as e:
        raise ValueError(f"{path}:{end + 1}: the SQL does not parse: {e}") from None
    # One SELECT: its result is the query's answer, and a file cannot hide a second statement.
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise ValueError(f"{path}:{end + 1}: a query file holds exactly one SELECT statement")
    # DuckDB refuses a parameter the statement does not use, and one it uses but is not given:
    # catching both here names the file, instead of failing when the query runs.
    used = set(_PLACEHOLDER.findall(_NOT_CODE.sub(" ", sql)))
    if used - params.keys():
        missing = ", ".join(sorted(used - params.keys()))
        raise ValueError(f"{path}:{end + 1}: the SQL uses undeclared parameters: {missing}")
    if params.keys() - used:
        unused = ", ".join(sorted(params.keys() - used))
        raise ValueError(f"{path}:{end}: declared parameters the SQL does not use: {unused}")
    return NamedQuery(name=name, description=header["description"], params=params, sql=sql)


def load_queries(folder: Path = QUERIES_DIR) -> dict[str, NamedQuery]:
    """Every query of `folder` (the project's `sql/queries/`), by name."""
    return {q.name: q for q in (parse_query(p) for p in sorted(folder.glob("*.sql")))}


def _convert(query: NamedQuery, name: str, value: str) -> Any:
    default = query.params[name][0]
    kind = type(default)
    # bool before int: a bool is an int to isinstance.
    if kind is bool:
        if value.strip().lower() in _TRUE:
            return True
        if value.strip().lower() in _FALSE:
            return False
        expected = "true or false"
    elif kind is int:
        if _INTEGER.match(value.strip()):
            return int(value)
        expected = "an integer"
    elif kind is float:
        try:
            return float(value)
        except ValueError:
            expected = "a number"
    else:
        return value
    raise ValueError(
        f"parameter {name!r} of query {query.name!r} must be {expected}, not {value!r}"
    )


def bind(query: NamedQuery, given: dict[str, str]) -> dict[str, Any]:
    """The query's parameters: its defaults, overridden by `given` (strings, as typed on the
    command line, converted to each default's type)."""
    unknown = sorted(given.keys() - query.params.keys())
    if unknown:
        known = ", ".join(query.params) or "none: it takes no parameters"
        raise ValueError(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
            f"for query {query.name!r}; known parameters: {known}"
        )
    values = {name: default for name, (default, _) in query.params.items()}
    for name, value in given.items():
        values[name] = _convert(query, name, value)
    return values


def connect_read_only(
    path: Path | str, timeout_s: float = 0.0, on_wait: Callable[[str], None] | None = None
) -> duckdb.DuckDBPyConnection:
    """The catalog, opened read-only and without access to any other file (see the module's
    docstring for why both). While a run writes it, waits up to `timeout_s` (telling
    `on_wait`), then raises CatalogBusy (an OSError)."""
    # Set at connect, not by a later SET, so no statement ever runs with access on; the
    # locked configuration keeps ad-hoc SQL from changing settings (temp_directory...).
    return lock.connect_existing(
        path,
        read_only=True,
        config={"enable_external_access": False, "lock_configuration": True},
        timeout_s=timeout_s,
        on_wait=on_wait,
    )


def _is_refused_write(error: duckdb.Error) -> bool:
    message = str(error).lower()
    return isinstance(error, duckdb.PermissionException) or any(r in message for r in _REFUSALS)


def run(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> pa.Table:
    """Run `sql` with `params` bound; its result as an Arrow table (empty when the statement
    returns none). A refused write raises PermissionError, any other SQL error ValueError."""
    try:
        result = con.execute(sql, params)
        if result is None or result.description is None:
            return pa.table({})
        return result.to_arrow_table()
    except duckdb.Error as e:
        if _is_refused_write(e):
            raise PermissionError(f"{READ_ONLY_MESSAGE}. DuckDB says: {e}") from None
        raise ValueError(str(e)) from None


def run_adhoc(
    path: Path | str,
    sql: str,
    params: dict[str, Any] | None = None,
    timeout_s: float = 0.0,
    on_wait: Callable[[str], None] | None = None,
) -> pa.Table:
    """Run SQL (a named query's, with its bound `params`, or the user's own) on the catalog
    at `path`, read-only (waiting up to `timeout_s` for a run writing it)."""
    con = connect_read_only(path, timeout_s, on_wait)
    try:
        return run(con, sql, params or {})
    finally:
        con.close()
