"""Where caption_shards keeps its files."""

from __future__ import annotations

import re
from pathlib import Path

from orchestration.objectstore import Location
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


def published_dir(layout: Layout, fmt: str) -> Location | None:
    """Where the asset publishes its export in one format: under the object root when the
    profile has one (see publish.py), else nowhere."""
    if not layout.object_root:
        return None
    return layout.shared_stage_dir(STAGE) / fmt


def staging_dir(layout: Layout, url: str) -> Path:
    """The local folder an export to the object-store folder `url` is written to before it
    is published: one per URL, so a re-export uploads only the shards that changed."""
    return layout.stage_dir(STAGE) / "outbox" / re.sub(r"[^A-Za-z0-9._-]+", "_", url)
