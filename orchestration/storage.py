"""Where a profile keeps its files: one storage root, `SCORETAG_HOME`, per profile, and
optionally an object root, `SCORETAG_OBJECT_ROOT`, for the data that outgrows one disk."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from orchestration.settings import Settings

if TYPE_CHECKING:
    from orchestration.objectstore import Location

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


def resolve_object_root(object_root: str | None = None) -> str:
    """The object root: the explicit argument, else `SCORETAG_OBJECT_ROOT`, else none."""
    return object_root or os.environ.get("SCORETAG_OBJECT_ROOT") or ""


@dataclass(frozen=True)
class Layout:
    """The paths under one storage root. Nothing here touches the disk."""

    home: Path
    image_root_override: str = ""
    # A URL on any fsspec filesystem (s3://bucket/prefix, gs://...) shared by every machine.
    object_root: str = ""

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

    def shared_stage_dir(self, stage: str) -> Location:
        """Where a stage keeps the files that grow with the data and that other machines read
        (raw_posts and normalized_scores; the embeddings, written by many GPU workers at once;
        the published caption exports): `data/<stage>` under the object root when there is
        one, else the stage's folder under the storage root."""
        if not self.object_root:
            return self.stage_dir(stage)
        from orchestration.objectstore import location  # fsspec, only for an object root

        return location(self.object_root) / "data" / stage

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


def layout_for(
    settings: Settings, home: str | Path | None = None, object_root: str | None = None
) -> Layout:
    return Layout(
        home=resolve_home(settings.name, home),
        image_root_override=settings.image_root,
        object_root=resolve_object_root(object_root),
    )
