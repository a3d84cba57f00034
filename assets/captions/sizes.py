"""Each exported image's width and height, read from the image file itself (its header, not
the booru's metadata, which can be wrong or missing): SimpleTuner buckets images by the
sizes the parquet gives without opening them, and the webdataset and `hf` rows give them
too. The size is the image as displayed, EXIF orientation applied, as SimpleTuner and
`datasets` load it. An image whose header cannot be read (not an image, empty, or too large
for PIL) is left out of these formats, counted as `image_unreadable`: its trainer would fail
on it.
"""

from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor

import polars as pl
from PIL import Image

from assets.captions.selection import Located, left_out_rows

IMAGE_UNREADABLE = "image_unreadable"
# Formats whose rows carry the image's size.
SIZED = ("parquet", "jsonl", "webdataset", "hf")
# Of an image inside a tar, the first bytes are read, and all of it only where its header
# runs past them (a JPEG's EXIF can).
HEAD_BYTES = 1 << 16
ORIENTATION = 0x0112
TURNED = (5, 6, 7, 8)  # EXIF orientations that swap width and height


def _displayed(img: Image.Image) -> tuple[int, int]:
    width, height = img.size
    # Only an EXIF block read with the header: PNG's getexif() would decode the image.
    if "exif" in img.info and img.getexif().get(ORIENTATION) in TURNED:
        return height, width
    return width, height


def _size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        return _displayed(img)


def image_size(path: str, offset: int | None, length: int | None) -> tuple[int, int] | None:
    """(width, height) of a loose file, or of `length` bytes at `offset` in a tar; None where
    PIL cannot read the header."""
    try:
        if offset is None:
            with Image.open(path) as img:
                return _displayed(img)
        with open(path, "rb") as f:
            f.seek(offset)
            head = f.read(min(length, HEAD_BYTES))
            try:
                return _size_of(head)
            except Exception:
                if length <= HEAD_BYTES:
                    raise
            f.seek(offset)
            return _size_of(f.read(length))
    except Exception:  # PIL raises many kinds on a bad file (OSError, SyntaxError, bombs...)
        return None


def _size_at(path: str, offset: int, length: int) -> tuple[int, int] | None:
    return image_size(path, None if offset < 0 else offset, None if length < 0 else length)


def read_sizes(located: Located, workers: int = 0, known: pl.DataFrame | None = None) -> Located:
    """`located` with `width` and `height` read from each image, those that cannot be read
    left out and counted. `known` (md5, width, height: what an earlier export read of the
    image with that md5, the same bytes) spares reading those again, and an image file that
    several rows point at (one file posted to several sites) is read once."""
    rows = located.rows
    place = ["image_path", "offset", "length"]
    sized = rows.select(
        "md5",
        image_path="image_path",
        offset=pl.col("tar_offset").fill_null(-1),
        length=pl.col("tar_length").fill_null(-1),
    )
    if known is not None and known.height:
        by_md5 = known.unique("md5").select("md5", "width", "height")
        sized = sized.join(by_md5, on="md5", how="left", maintain_order="left")
    else:
        sized = sized.with_columns(width=pl.lit(None, pl.Int32), height=pl.lit(None, pl.Int32))
    todo = sized.filter(pl.col("width").is_null()).select(place).unique()
    with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
        read = list(pool.map(lambda job: _size_at(*job), todo.rows()))
    todo = todo.with_columns(
        read_width=pl.Series([r[0] if r else None for r in read], dtype=pl.Int32),
        read_height=pl.Series([r[1] if r else None for r in read], dtype=pl.Int32),
    )
    sized = sized.join(todo, on=place, how="left", maintain_order="left")
    width = pl.coalesce("width", "read_width").cast(pl.Int32)
    height = pl.coalesce("height", "read_height").cast(pl.Int32)
    sized = sized.select(width=width, height=height)
    rows = rows.with_columns(width=sized["width"], height=sized["height"])
    readable = rows["width"].is_not_null()
    unreadable = rows.filter(~readable)
    if not unreadable.height:
        return Located(rows, located.dropped, located.left_out)
    dropped = {**located.dropped, IMAGE_UNREADABLE: unreadable.height}
    left_out = pl.concat([located.left_out, left_out_rows(unreadable, IMAGE_UNREADABLE)])
    return Located(rows.filter(readable), dropped, left_out)
