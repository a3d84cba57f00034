"""Every SQL file of sql/: it parses, the statements the code loads by name exist, and what
each of the captions stage's statements gives and does on an empty catalog."""

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
    "seen": 0,  # change_seq an export recorded
    "through": 0,  # the last added_seq it covered
    "los": [0],  # ranges of added_seq an incremental export selects again
    "his": [10],
    "rules": ["r"],  # tag-family rules (assets/captions/families.py)
    "rule": "r",
    "family": "quality",
    "record": "{}",
}
# Another head's cut-points: a statement about head "h" must neither show nor delete them.
OTHER = ("other", 1, 0.2, 0.9, datetime(2025, 1, 1, tzinfo=UTC))
MINE = ("h", 1, 0.0, 1.0, PARAMS["created_at"])  # what insert_calibration stores from `rows`

# What an export is built from, in this order.
SELECTED = (
    ["post_key", "site", "post_id", "md5", "image_key", "rating", "width", "height"]
    + ["file_ext", "tags", "character_tags", "copyright_tags", "artist_tags"]
    + ["species_tags", "meta_tags", "score", "bucket", "added_seq"]
    + ["popularity", "percentile", "year"]
)
FAMILY_VALUES = ["site", "rating", "popularity", "score", "percentile", "year"]
# Per captions statement, on a catalog with no post and no head (only OTHER's cut-points): its
# columns, its rows (DuckDB answers a write with the count of rows written, a CREATE with no
# row), and the calibrations table after it.
EMPTY = {
    "active_head": (["version"], [], [OTHER]),
    "calibration": (["bucket", "min_score", "max_score", "created_at"], [], [OTHER]),
    "delete_calibration": (["Count"], [(0,)], [OTHER]),
    "insert_calibration": (["Count"], [(1,)], [OTHER, MINE]),
    "macros": (["Count"], [], [OTHER]),
    "scope_buckets": (["bucket", "images"], [], [OTHER]),
    "scope_scores": (["score"], [], [OTHER]),
    "select": (SELECTED, [], [OTHER]),
    "select_ranges": (SELECTED, [], [OTHER]),
    "change_tracking": (["tracked"], [(True,)], [OTHER]),
    "change_state": (["change_seq", "through"], [(0, 0)], [OTHER]),
    "changes": (["added_seq"], [], [OTHER]),
    "selection_buckets": (["bucket", "posts"], [], [OTHER]),
    "family_values": (FAMILY_VALUES, [], [OTHER]),
    "value_groups": (["site", "rating"], [], [OTHER]),
    "tag_calibrations": (["rule", "record"], [], [OTHER]),
    "delete_tag_calibrations": (["Count"], [(0,)], [OTHER]),
    "insert_tag_calibration": (["Count"], [(1,)], [OTHER]),
}
MACROS = {"caption_scope", "caption_bucketed", "caption_selection"}
CAPTIONS = sorted((SQL_DIR / "captions").glob("*.sql"))


def _macros(con: duckdb.DuckDBPyConnection) -> set[str]:
    query = "SELECT function_name FROM duckdb_functions() WHERE function_type = 'table_macro'"
    return {name for (name,) in con.execute(query).fetchall()} & MACROS


def test_every_captions_statement_has_an_expectation():
    assert {p.stem for p in CAPTIONS} == set(EMPTY)


@pytest.mark.parametrize("path", CAPTIONS, ids=lambda p: p.stem)
def test_captions_statements_run_on_an_empty_catalog(path: Path):
    con = duckdb.connect()
    for text in schema():
        con.execute(text)
    con.execute("INSERT INTO calibrations VALUES (?, ?, ?, ?, ?)", OTHER)
    if path.stem == "macros":
        assert _macros(con) == set()  # the statement under test is what creates them
    else:
        con.execute(statement("captions/macros"))
    # A table in memory: a reader over this same connection would wait on it for ever.
    rows = pa.table({"bucket": [1], "min_score": [0.0], "max_score": [1.0]})
    con.register("new_calibration", rows)
    sql = path.read_text()
    used = set(re.findall(r"\$([a-z_]+)", sql))
    result = con.execute(sql, {k: v for k, v in PARAMS.items() if k in used})
    columns, expected, calibrations = EMPTY[path.stem]
    assert [c[0] for c in result.description] == columns
    assert result.fetchall() == expected
    stored = "SELECT * FROM calibrations ORDER BY head_version DESC"
    assert con.execute(stored).fetchall() == calibrations
    assert _macros(con) == MACROS
