"""Concurrency pools shared by every stage (limits live in the instance, see instance.py)."""

GPU = "gpu"
"""Steps that need a GPU: at most `gpu_slots` run at once across all runs."""

DUCKDB = "duckdb"
"""Every writer of the catalog: DuckDB allows one writing process."""
