"""The places a profile keeps images: `[images] sources`, or the image root alone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestration.settings import Settings


@dataclass(frozen=True)
class Source:
    """One place images are kept. `label` names it in the index and in metadata."""

    path: str  # absolute: a folder or a tar shard
    layout: str = "auto"  # auto | md5 | post_id | index
    site: str = ""
    index: str = ""  # absolute: the index file (layout "index")

    @property
    def key(self) -> str:
        """Identifies the source's stamps and parts: a changed layout is another source."""
        return f"{self.layout}|{self.site}|{self.path}|{self.index}"

    @property
    def label(self) -> str:
        return self.index if self.layout == "index" else self.path


def _absolute(path: str, root: Path) -> str:
    given = Path(path).expanduser() if path else root
    return str(given if given.is_absolute() else (root / given).resolve())


def sources_of(settings: Settings, image_root: Path) -> list[Source]:
    """The profile's sources, the image root (layout auto) when it lists none, and the
    older `[embed] image_index` as one more index source."""
    root = Path(image_root)
    listed = [
        Source(
            _absolute(s.path, root),
            "index" if s.index else s.layout,
            s.site,
            _absolute(s.index, root) if s.index else "",
        )
        for s in settings.images.sources
    ] or [Source(str(root))]
    if settings.embed.image_index:
        listed.append(Source(str(root), "index", index=_absolute(settings.embed.image_index, root)))
    return listed
