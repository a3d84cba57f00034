"""The catalog's SQL, read from the project's `sql/` folder (see orchestration/sqlfiles.py,
shared with the stages upstream that run SQL of their own)."""

from orchestration.sqlfiles import SQL_DIR, run_script, schema, statement

__all__ = ["SQL_DIR", "run_script", "schema", "statement"]
