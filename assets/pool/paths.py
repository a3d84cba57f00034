"""Where the rating pool lives."""

from __future__ import annotations

from pathlib import Path

from orchestration.storage import Layout

STAGE = "rating_pool"


def pool_path(layout: Layout) -> Path:
    return layout.stage_dir(STAGE) / "pool.parquet"
