"""Where the rating pool lives."""

from __future__ import annotations

from pathlib import Path

from orchestration.storage import Layout

STAGE = "rating_pool"


def pool_path(layout: Layout) -> Path:
    return layout.stage_dir(STAGE) / "pool.parquet"


def strata_path(layout: Layout) -> Path:
    """Per stratum: eligible posts, how many are pooled; written with each materialization."""
    return layout.stage_dir(STAGE) / "strata.parquet"
