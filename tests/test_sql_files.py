"""Every SQL file of sql/: it parses, the statements the code loads by name exist, and the
captions stage's statements run on an empty catalog."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from assets.catalog.statements import SQL_DIR, schema, statement

ROOT = Path(__file__).resolve().parents[1]
SQL_FILES = sorted(SQL_DIR.rglob("*.sql"))
LOADED = re.compile(r'statement\("([a-z_/]+)"\)')


def _loaded_names() -> set[str]:
    code = [p for folder in ("assets", "orchestration") for p in (ROOT / folder).rglob("*.py")]
    return {name for path in code for name in LOADED.findall(path.read_text())}


@pytest.mark.parametrize("path", SQL_FILES, ids=lambda p: str(p.relative_to(SQL_DIR)))
def test_every_sql_file_parses(path: Path):
    statements = duckdb.extract_statements(path.read_text())
    assert statements, f"{path} holds no statement"


def test_every_statement_the_code_loads_exists():
    missing = sorted(n for n in _loaded_names() if not (SQL_DIR / f"{n}.sql").is_file())
    assert missing == []


def test_every_captions_statement_is_loaded_by_the_code():
    files = {f"captions/{p.stem}" for p in (SQL_DIR / "captions").glob("*.sql")}
    assert files - _loaded_names() == set()


PARAMS = {
    "head": "h",
    "sites": [],
    "ratings": ["g", "s", "q", "e"],
    "min_bucket": 1,
    "created_at": datetime(2026, 1, 1, tzinfo=UTC),
}


@pytest.mark.parametrize("path", sorted((SQL_DIR / "captions").glob("*.sql")), ids=lambda p: p.stem)
def test_captions_statements_run_on_an_empty_catalog(path: Path):
    con = duckdb.connect()
    for text in schema():
        con.execute(text)
    con.execute(statement("captions/macros"))
    # A table in memory: a reader over this same connection would wait on it for ever.
    rows = pa.table({"bucket": [1], "min_score": [0.0], "max_score": [1.0]})
    con.register("new_calibration", rows)
    sql = path.read_text()
    used = set(re.findall(r"\$([a-z_]+)", sql))
    con.execute(sql, {k: v for k, v in PARAMS.items() if k in used})
