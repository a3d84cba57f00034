"""Downscaled previews of pool images, made once and kept on disk, so a labeler's page loads
a few hundred kilobytes instead of a 30 MB original.

A preview is the picture as a person would see it, with its long side at most `long_side`
pixels: EXIF orientation applied; CMYK and other colour spaces converted (through the
embedded ICC profile where there is one); palette transparency, LA and RGBA composited on
white; 16-bit greys scaled to 8 bits; an animation's first frame (assets/images/decode.py's
rules). It is encoded as WebP or JPEG.

An image that already fits, in a format every browser shows (JPEG, PNG, GIF, WebP), is its
own preview: it is decoded once to check it, then served as it is, never re-encoded (which
would blur the very artifacts a labeler judges).

The cache: `<folder>/<long_side>/<xx>/<digest>.<webp|jpg>` (an empty `<digest>.orig` for an
image that is its own preview), the digest being a hash of the image's path, offset, length,
file size and modification time, so a changed file gets a new preview. Files are written
under a temporary name and renamed into place. Every hit touches the file; once the cache
holds more than `max_bytes`, the least recently used files are removed until it holds 80%.
An image that cannot be decoded raises `Unusable` with its reason (remembered, so it is
not decoded again while the app runs).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import threading
import time
from pathlib import Path

from PIL import Image

from assets.images.decode import DEFAULT_MAX_PIXELS, Unusable, loaded, opened, to_rgb
from assets.labels.images import Located

BROWSER_FORMATS = {"JPEG", "PNG", "GIF", "WEBP"}
FORMATS = {"webp": ("WEBP", "webp", "image/webp"), "jpeg": ("JPEG", "jpg", "image/jpeg")}
_STALE_TMP_S = 3600  # a temporary file this old was left by a killed writer
_LOCKS = 64


class Previews:
    """The preview cache of one storage root, for one long side."""

    def __init__(
        self,
        folder: Path,
        long_side: int,
        *,
        fmt: str = "webp",
        quality: int = 85,
        max_bytes: int = 2 << 30,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ):
        if long_side < 1:
            raise ValueError("a preview needs a long side of at least 1 pixel")
        self.folder = Path(folder)
        self.long_side = long_side
        self.pil_format, self.ext, self.media_type = FORMATS[fmt]
        self.quality = quality
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.decoded = 0  # images decoded since start (a cache hit decodes nothing)
        self._locks = [threading.Lock() for _ in range(_LOCKS)]
        self._guard = threading.Lock()
        self._failed: dict[str, Unusable] = {}
        self._total: int | None = None  # bytes in the cache, counted on first write

    def etag(self, image: Located) -> str:
        return f'"p{self.long_side}-{image.digest}"'

    def get(self, image: Located) -> bytes | None:
        """The preview's bytes (`media_type`), or None when the original is its own preview.
        Raises Unusable for an image that cannot be shown."""
        key = image.digest
        if key in self._failed:
            raise self._failed[key]
        base = self.folder / str(self.long_side) / key[:2] / key
        made, original = base.with_suffix(f".{self.ext}"), base.with_suffix(".orig")
        with self._locks[int(key[:4], 16) % _LOCKS]:
            for path in (made, original):
                with contextlib.suppress(FileNotFoundError):
                    data = path.read_bytes()
                    os.utime(path)  # recently used: pruned last
                    return data if path is made else None
            try:
                self.decoded += 1
                picture = render(image.read(), self.long_side, self.max_pixels)
            except Unusable as e:
                self._failed[key] = e
                raise
            except OSError as e:  # the file went away or cannot be read
                raise Unusable("unreadable", str(e)) from None
            data = b"" if picture is None else encode(picture, self.pil_format, self.quality)
            self._write(original if picture is None else made, data)
            return None if picture is None else data

    def _write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        with self._guard:
            if self._total is None:
                self._total = sum(size for _, size, _ in self._files())
            else:
                self._total += len(data)
            over = self._total > self.max_bytes
        if over:
            self.prune()

    def _files(self) -> list[tuple[int, int, Path]]:
        """(last used, size, path) of every cached file, stale temporary files included."""
        found = []
        now = time.time()
        for path in self.folder.rglob("*"):
            with contextlib.suppress(FileNotFoundError):
                st = path.stat()
                temporary = path.name.startswith(".")
                if not path.is_file() or (temporary and now - st.st_mtime < _STALE_TMP_S):
                    continue
                found.append((st.st_mtime_ns, st.st_size, path))
        return found

    def prune(self) -> int:
        """Remove the least recently used files until the cache holds 80% of its bound;
        returns how many were removed."""
        with self._guard:
            files = sorted(self._files())
            total = sum(size for _, size, _ in files)
            removed = 0
            for _, size, path in files:
                if total <= self.max_bytes * 0.8:
                    break
                path.unlink(missing_ok=True)
                total -= size
                removed += 1
            self._total = total
            return removed


def render(data: bytes, long_side: int, max_pixels: int) -> Image.Image | None:
    """The upright RGB picture in `data` with its long side at most `long_side`, or None
    when the file, in a format browsers show, already fits (checked to decode)."""
    img = opened(data, max_pixels)
    fits = max(img.size) <= long_side and img.format in BROWSER_FORMATS
    # A JPEG too large decodes at 1/2, 1/4 or 1/8 where that still covers the long side.
    img = loaded(img, None if fits else (long_side, long_side))
    if fits:
        return None
    img = to_rgb(img)
    img.thumbnail((long_side, long_side), Image.Resampling.LANCZOS)
    return img


def encode(img: Image.Image, pil_format: str, quality: int) -> bytes:
    out = io.BytesIO()
    if pil_format == "JPEG":
        img.save(out, "JPEG", quality=quality, optimize=True, progressive=True)
    else:
        img.save(out, pil_format, quality=quality, method=4)
    return out.getvalue()
