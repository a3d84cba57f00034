"""The SQL the stages run (the catalog's, normalize's, the export's), read from the project's
`sql/` folder: no statement is built in Python, only parameters are bound."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import duckdb

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"


@functools.cache
def statement(name: str) -> str:
    """The text of `sql/<name>.sql` (`name` like "catalog/unscored")."""
    path = SQL_DIR / f"{name}.sql"
    if not path.is_file():
        raise FileNotFoundError(f"no SQL file {path}")
    return path.read_text()


def schema() -> list[str]:
    """The schema files' texts, in the order they apply."""
    return [p.read_text() for p in sorted((SQL_DIR / "schema").glob("*.sql"))]


def run_script(con: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any] | None = None):
    """Run every statement of `sql/<name>.sql` in order, each with the parameters it names
    (DuckDB binds parameters to one statement at a time); the last one's result."""
    params = params or {}
    result = None
    for part in duckdb.extract_statements(statement(name)):
        result = con.execute(part, {k: params[k] for k in part.named_parameters})
    return result
