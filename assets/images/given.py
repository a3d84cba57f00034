"""The images a user names on the command line (`scoretag embed PATH...`): image files,
folders (their image files and tar shards, found recursively) and tar shards, read directly
with the index's own tar reader, not through the index."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from assets.images.locate import LOCATION
from assets.images.names import IMAGE_EXTS, MD5, SHA512, ext_expr, stem_expr
from assets.images.tars import tar_frame

_GIVEN_EXTS = {*IMAGE_EXTS, "tar"}


def _tar_images(path: Path) -> pl.DataFrame:
    members = tar_frame(path, layout="md5", keep_unkeyed=True)
    return members.select(
        image_key=pl.coalesce("md5", "sha512"),
        path=pl.lit(str(path)),
        offset="offset",
        length="length",
        file_ext="file_ext",
        source=pl.lit(f"{path}/") + pl.col("member"),
    )


def _loose_images(files: list[Path]) -> pl.DataFrame:
    frame = pl.DataFrame({"path": [str(p) for p in files]}, schema={"path": pl.String})
    stem = stem_expr(pl.col("path"))
    return frame.select(
        image_key=pl.when(stem.str.contains(MD5) | stem.str.contains(SHA512)).then(stem),
        path="path",
        offset=pl.lit(-1, pl.Int64),
        length=pl.lit(-1, pl.Int64),
        file_ext=ext_expr(pl.col("path")),
        source="path",
    )


def given_images(paths: list[Path]) -> pl.DataFrame:
    """LOCATION rows plus `source` (the file, or `<shard>/<member>`), in the order given,
    each folder sorted. `image_key` is the md5 or sha512 that names a file (or a member, or
    its json sidecar), else the source."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = (p for p in path.rglob("*") if p.is_file())
            files += sorted(p for p in found if p.suffix.lower().lstrip(".") in _GIVEN_EXTS)
        else:
            files.append(path)
    frames, loose = [], []
    for path in files:
        if path.suffix.lower() == ".tar":
            frames.append(_loose_images(loose))
            frames.append(_tar_images(path.resolve()))
            loose = []
        else:
            loose.append(path.resolve())
    frames.append(_loose_images(loose))
    located = pl.concat(frames)
    return located.with_columns(image_key=pl.coalesce("image_key", "source")).cast(
        {**LOCATION, "source": pl.String}
    )
