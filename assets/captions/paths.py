"""Where caption_shards keeps its files."""

from __future__ import annotations

import re
from pathlib import Path

from orchestration.objectstore import Location
from orchestration.storage import Layout

STAGE = "caption_shards"


def export_dir(layout: Layout, name: str) -> Path:
    """The asset's export of one name (configured_exports)."""
    return layout.stage_dir(STAGE) / name


def configured_exports(formats: tuple[str, ...], also: tuple[str, ...]) -> dict[str, tuple]:
    """The exports caption_shards writes, by name: each format in `[captions] style` (named
    for the format), and in each of `[captions] also_styles` (named `<format>-<style>`, a
    vocabulary file by its stem): name -> (format, style or None for `[captions] style`)."""
    found: dict[str, tuple] = {fmt: (fmt, None) for fmt in formats}
    for style in also:
        found.update({f"{fmt}-{Path(style).stem}": (fmt, style) for fmt in formats})
    return found


def made_exports(layout: Layout, formats: tuple[str, ...], also: tuple[str, ...]) -> dict:
    """(folder, manifest) of each configured export (configured_exports) made so far, by
    name, in configured order."""
    from assets.captions.manifest import read

    found = {}
    for name in configured_exports(formats, also):
        folder = export_dir(layout, name)
        manifest = read(folder)
        if manifest is not None:
            found[name] = (folder, manifest)
    return found


def calibration_dir(layout: Layout) -> Path:
    """Records of how each head's stored cut-points were made."""
    return layout.stage_dir(STAGE) / "calibrations"


def calibration_record(layout: Layout, head: str) -> Path:
    """How a head's stored cut-points were made (policy, scope, bucket shares then)."""
    return calibration_dir(layout) / f"{head}.json"


def published_dir(layout: Layout, name: str) -> Location | None:
    """Where the asset publishes one of its exports: under the object root when the profile
    has one (see publish.py), else nowhere."""
    if not layout.object_root:
        return None
    return layout.shared_stage_dir(STAGE) / name


def staging_dir(layout: Layout, url: str) -> Path:
    """The local folder an export to the object-store folder `url` is written to before it
    is published: one per URL, so a re-export uploads only the shards that changed."""
    return layout.stage_dir(STAGE) / "outbox" / re.sub(r"[^A-Za-z0-9._-]+", "_", url)
