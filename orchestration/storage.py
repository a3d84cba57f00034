"""Where a profile keeps its files: one storage root, `SCORETAG_HOME`, per profile."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from orchestration.settings import Settings

SITES = ("danbooru", "e621", "derpibooru", "gelbooru")


def default_home(profile: str) -> Path:
    return Path(".scoretag") / profile


def resolve_home(profile: str, home: str | Path | None = None) -> Path:
    """The storage root: the explicit argument, else `SCORETAG_HOME`, else `./.scoretag/<profile>`.

    Always absolute, because Dagster's code servers and run workers may start in another
    working directory.
    """
    chosen = home or os.environ.get("SCORETAG_HOME") or default_home(profile)
    return Path(chosen).expanduser().resolve()


@dataclass(frozen=True)
class Layout:
    """The paths under one storage root. Nothing here touches the disk."""

    home: Path
    image_root_override: str = ""

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def inbox(self) -> Path:
        """Raw dumps waiting to be ingested, one folder per site."""
        return self.home / "inbox"

    def site_inbox(self, site: str) -> Path:
        return self.inbox / site

    @property
    def images(self) -> Path:
        """The image root: files named `<md5>.<ext>`."""
        if self.image_root_override:
            return Path(self.image_root_override).expanduser().resolve()
        return self.home / "images"

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def image_cache(self) -> Path:
        """What is known of the files under the image root (sha512s by path, size and
        modification time; tar shards' members), shared by every stage that looks there."""
        return self.data / "image_cache"

    def stage_dir(self, stage: str) -> Path:
        """The folder a pipeline stage writes its files to."""
        return self.data / stage

    @property
    def catalog(self) -> Path:
        return self.home / "catalog.duckdb"

    @property
    def label_store(self) -> Path:
        return self.home / "labels.sqlite"

    @property
    def demo(self) -> Path:
        """Ground truth of the generated demo data (never read by the pipeline's stages)."""
        return self.home / "demo"

    def ensure(self) -> Layout:
        """Create the folders every profile has."""
        for path in (self.dagster_home, self.data, self.images, *map(self.site_inbox, SITES)):
            path.mkdir(parents=True, exist_ok=True)
        return self


def layout_for(settings: Settings, home: str | Path | None = None) -> Layout:
    return Layout(home=resolve_home(settings.name, home), image_root_override=settings.image_root)
