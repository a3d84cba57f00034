"""Where manual_labels keeps its table."""

from __future__ import annotations

from pathlib import Path

from orchestration.storage import Layout

STAGE = "manual_labels"


def labels_path(layout: Layout) -> Path:
    return layout.stage_dir(STAGE) / "labels.parquet"


def previews_dir(layout: Layout) -> Path:
    """The labeling app's preview cache (safe to delete: previews are made again)."""
    return layout.image_cache / "previews"


def pairs_path(layout: Layout) -> Path:
    """The resolved pairwise preferences (assets/labels/pairs.py: PAIRS)."""
    return layout.stage_dir(STAGE) / "pairs.parquet"
