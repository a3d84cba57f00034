"""A profile's image index over literal files, for the tests of every stage that asks it."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import polars as pl

from assets.images.find import load_index, scan
from orchestration.settings import ImageSettings, ImageSource, Settings, load_settings
from orchestration.storage import Layout


def add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            add_member(tar, name, data)
    return path


def profile(
    home: Path, root: Path, sources: list[dict] | None = None, image_index: str = ""
) -> tuple[Layout, Settings]:
    settings = load_settings("demo")
    images = ImageSettings(sources=tuple(ImageSource(**s) for s in sources or []))
    embed = settings.embed.model_copy(update={"image_index": image_index})
    settings = settings.model_copy(update={"images": images, "embed": embed})
    return Layout(home=home, image_root_override=str(root)), settings


def index_of(
    home: Path,
    root: Path,
    sources: list[dict] | None = None,
    posts: pl.DataFrame | None = None,
    image_index: str = "",
) -> pl.DataFrame:
    """Scan (with `posts`, for Philomena's sha512s) and load the index."""
    layout, settings = profile(home, root, sources, image_index)
    scan(layout, settings, posts)
    return load_index(layout, settings)
