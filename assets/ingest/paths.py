"""Where raw_posts keeps each ingested file's rows, and how a file is named as a partition."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from orchestration.objectstore import Location
from orchestration.storage import SITES, Layout

STAGE = "raw_posts"
# e621's tag table is read beside its posts export, never ingested as posts itself.
COMPANION = re.compile(r"^tags-.*\.csv(\.gz)?$")


@dataclass(frozen=True)
class RawFile:
    """One raw file in the inbox, known to Dagster as the partition `<site>/<name>`."""

    site: str
    name: str

    @property
    def key(self) -> str:
        return f"{self.site}/{self.name}"

    @classmethod
    def from_key(cls, key: str) -> RawFile:
        site, _, name = key.partition("/")
        if site not in SITES or not name or "/" in name or name.startswith("."):
            raise ValueError(
                f"not a raw file partition: {key!r} (expected <site>/<file name>, "
                f"site one of {', '.join(SITES)})"
            )
        return cls(site, name)

    def path(self, layout: Layout) -> Path:
        return layout.site_inbox(self.site) / self.name

    def output(self, layout: Layout, table: str) -> Location:
        """`table` is posts, quarantine or skipped: under the object root when the profile has
        one (stage tables grow with the posts), else under the storage root."""
        return layout.shared_stage_dir(STAGE) / self._table_file(table)

    def staging(self, layout: Layout, table: str) -> Path:
        """Where ingestion writes `table` first, on the local disk: the output itself without
        an object root; with one, the file uploaded to the output once it is whole."""
        return layout.stage_dir(STAGE) / self._table_file(table)

    def _table_file(self, table: str) -> str:
        return f"{table}/{self.site}/{self.name}.parquet"


def is_ingestible(path: Path) -> bool:
    """A file the inbox sensor should turn into a partition."""
    return (
        path.is_file()
        and not path.name.startswith(".")
        and not path.name.endswith(".tmp")
        and not COMPANION.match(path.name)
    )


def signature(path: Path) -> str:
    """Cheap identity of a file's content: size and modification time."""
    stat = path.stat()
    return f"{stat.st_size}-{stat.st_mtime_ns}"


def inbox_files(layout: Layout) -> list[RawFile]:
    return [
        RawFile(site, path.name)
        for site in SITES
        if layout.site_inbox(site).is_dir()
        for path in sorted(layout.site_inbox(site).iterdir())
        if is_ingestible(path)
    ]


def table_files(layout: Layout, table: str = "posts") -> list[Location]:
    """One table (posts, quarantine or skipped) of every raw file ingested so far, superseded
    ones included (posts_files leaves those out)."""
    return sorted((layout.shared_stage_dir(STAGE) / table).glob("*/*.parquet"))


def posts_files(layout: Layout) -> list[Location]:
    """The posts tables the stages read: every ingested raw file's, except those a newer full
    export of their site superseded (see assets/ingest/supersede.py)."""
    from assets.ingest.supersede import current_files

    return current_files(layout)


def superseded_files(layout: Layout) -> list:
    """Each superseded raw file still on disk, with what superseded it and since when
    (`supersede.Superseded`)."""
    from assets.ingest.supersede import superseded_files as superseded

    return superseded(layout)
