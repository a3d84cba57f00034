"""Where caption_shards keeps its files."""

from __future__ import annotations

from pathlib import Path

from orchestration.storage import Layout

STAGE = "caption_shards"


def export_dir(layout: Layout, fmt: str) -> Path:
    """The asset's export in one format."""
    return layout.stage_dir(STAGE) / fmt


def calibration_dir(layout: Layout) -> Path:
    """Records of how each head's stored cut-points were made."""
    return layout.stage_dir(STAGE) / "calibrations"


def calibration_record(layout: Layout, head: str) -> Path:
    """How a head's stored cut-points were made (policy, scope, bucket shares then)."""
    return calibration_dir(layout) / f"{head}.json"
