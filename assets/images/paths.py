"""Where the image index lives under the storage root."""

from __future__ import annotations

from pathlib import Path

from orchestration.storage import Layout

STAGE = "images"


def index_dir(layout: Layout) -> Path:
    return layout.stage_dir(STAGE) / "index"


def fetched_dir(layout: Layout) -> Path:
    """Where downloaded images go: `<image root>/fetched/<YYYY-MM-DD>/<site>/<md5[0:2]>/
    <md5>.<ext>`, a loose md5 layout the default source (the image root, layout auto) finds.
    A folder per UTC day of download, so a day's downloads change only that day's folders and
    the next index scan lists only them (not every md5 folder of the whole store)."""
    return layout.images / "fetched"
