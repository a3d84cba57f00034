"""The SQL the catalog runs, read from the project's `sql/` folder: no statement is built in
Python, only parameters are bound."""

from __future__ import annotations

import functools
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


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
