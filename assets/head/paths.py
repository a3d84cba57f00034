"""Where aesthetic_head keeps its heads and its last gate decision."""

from __future__ import annotations

from pathlib import Path

from assets.head.registry import Registry
from orchestration.storage import Layout

STAGE = "aesthetic_head"


def registry(layout: Layout) -> Registry:
    return Registry(layout.stage_dir(STAGE))


def last_training_path(layout: Layout) -> Path:
    """The latest training's version, metrics and gate decision (the gate check reads it)."""
    return layout.stage_dir(STAGE) / "last_training.json"
