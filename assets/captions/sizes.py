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


def read_sizes(located: Located, workers: int = 0, known: pl.DataFrame | None = None) -> Located:
    """`located` with `width` and `height` read from each image, those that cannot be read
    left out and counted. `known` (md5, width, height: what an earlier export read of the
    image with that md5, the same bytes) spares reading those again."""
    rows = located.rows
    jobs = rows.select("image_path", "tar_offset", "tar_length").rows()
    given: list = [None] * rows.height
    if known is not None and known.height and rows.height:
        sizes_by_md5 = known.unique("md5").select("md5", known_width="width", known_height="height")
        found = rows.select("md5").join(sizes_by_md5, on="md5", how="left", maintain_order="left")
        given = [
            None if w is None or h is None else (w, h)
            for w, h in zip(found["known_width"], found["known_height"], strict=True)
        ]

    todo = [i for i, size in enumerate(given) if size is None]
    with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
        for i, size in zip(todo, pool.map(lambda i: image_size(*jobs[i]), todo), strict=True):
            given[i] = size
    sizes = given
    readable = pl.Series([size is not None for size in sizes], dtype=pl.Boolean)
    rows = rows.with_columns(
        width=pl.Series([s[0] if s else None for s in sizes], dtype=pl.Int32),
        height=pl.Series([s[1] if s else None for s in sizes], dtype=pl.Int32),
    )
    unreadable = rows.filter(~readable)
    if not unreadable.height:
        return Located(rows, located.dropped, located.left_out)
    dropped = {**located.dropped, IMAGE_UNREADABLE: unreadable.height}
    left_out = pl.concat([located.left_out, left_out_rows(unreadable, IMAGE_UNREADABLE)])
    return Located(rows.filter(readable), dropped, left_out)
