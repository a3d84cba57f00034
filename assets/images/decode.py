"""A file a booru served, turned into the RGB picture a person would see, or refused with a
reason.

Accepted: EXIF orientation applied; CMYK and other colour spaces converted (through the
embedded ICC profile where there is one); palette transparency, LA and RGBA composited on
white, as a browser on a white page shows them; 16-bit greys scaled to 8 bits; animations
give their first frame. Refused, each with its own reason: missing and empty files, files
that are not images (an HTML error page saved as .png), truncated or corrupt data, and
pictures over `max_pixels` (decompression bombs), checked from the header before decoding.
"""

from __future__ import annotations

import functools
import io
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 89_478_485  # PIL's own default bomb limit: about 9459 x 9459
REASONS = ("missing", "empty", "not_an_image", "too_large", "truncated", "corrupt")
_WHITE = (255, 255, 255)
_ALPHA_MODES = {"LA", "La", "PA", "RGBA", "RGBa"}
_WIDE_GREY_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}


class Unusable(Exception):
    """An image that cannot be embedded: `reason` is one of REASONS."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def read_bytes(path: Path, offset: int = -1, size: int = -1) -> bytes:
    """A whole file, or `size` bytes at `offset` (a member of a tar shard)."""
    try:
        with path.open("rb") as f:
            if offset < 0:
                return f.read()
            f.seek(offset)
            return f.read(size)
    except FileNotFoundError:
        raise Unusable("missing", str(path)) from None
    except IsADirectoryError:
        raise Unusable("not_an_image", f"{path} is a directory") from None


def decode(data: bytes, max_pixels: int, draft: tuple[int, int] | None = None) -> Image.Image:
    """The RGB picture in `data`. `draft` lets a JPEG decode at a reduced scale (a power of
    two) that still covers (width, height): decoding a 2048 px JPEG for a 224 px model input
    at 1/4 or 1/8 scale is several times faster and changes nothing the model can see."""
    return to_rgb(loaded(opened(data, max_pixels), draft))


def opened(data: bytes, max_pixels: int) -> Image.Image:
    """The picture in `data`, its header read and its size checked, its pixels not decoded
    yet (so a caller can look at its format and size first)."""
    if not data:
        raise Unusable("empty")
    stream = io.BytesIO(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(stream)
    except Image.DecompressionBombError as e:
        raise Unusable("too_large", str(e)) from None
    except UnidentifiedImageError:
        stream.seek(0)
        kind = _signature(stream.read(16))
        if kind:
            raise Unusable("corrupt", f"a {kind} whose header cannot be read") from None
        raise Unusable("not_an_image", _sniff(stream)) from None
    except (OSError, SyntaxError, ValueError) as e:
        raise Unusable(_broken(str(e)), str(e)) from None
    if img.width * img.height > max_pixels:
        raise Unusable("too_large", f"{img.width}x{img.height} is over {max_pixels:,} pixels")
    return img


def loaded(img: Image.Image, draft: tuple[int, int] | None = None) -> Image.Image:
    """`img` with its pixels decoded: a JPEG at the reduced scale `draft` allows."""
    if draft and img.format == "JPEG":
        img.draft("RGB", draft)
    try:
        img.load()
    except OSError as e:
        raise Unusable(_broken(str(e)), str(e)) from None
    except (SyntaxError, ValueError, EOFError, MemoryError) as e:
        raise Unusable("corrupt", f"{type(e).__name__}: {e}") from None
    return img


_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"BM": "BMP",
}


def _signature(head: bytes) -> str:
    """The image format these first bytes announce, or ""."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return next((kind for magic, kind in _SIGNATURES.items() if head.startswith(magic)), "")


def _broken(message: str) -> str:
    """PIL says a file ended early in several words, at open ("Truncated File Read": the
    headers are cut) or at load ("image file is truncated", "broken data stream")."""
    message = message.lower()
    return "truncated" if "truncated" in message or "broken data stream" in message else "corrupt"


def _sniff(stream: BinaryIO) -> str:
    """What the bytes look like, for the failure's detail."""
    stream.seek(0)
    head = stream.read(64).lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):
        return "an HTML page"
    if head[:1] in (b"{", b"["):
        return "JSON text"
    return f"unknown format (starts {head[:8]!r})"


def to_rgb(img: Image.Image) -> Image.Image:
    """Upright RGB pixels in sRGB, transparency shown on white."""
    img = ImageOps.exif_transpose(img)
    if img.mode in _WIDE_GREY_MODES:
        img = _wide_grey_to_l(img)
    elif img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif img.mode in ("RGB", "CMYK") and img.info.get("icc_profile"):
        img = _to_srgb(img)
    if img.mode in _ALPHA_MODES:
        rgba = img.convert("RGBA")
        white = Image.new("RGB", rgba.size, _WHITE)
        white.paste(rgba, mask=rgba.getchannel("A"))
        return white
    return img if img.mode == "RGB" else img.convert("RGB")


def _wide_grey_to_l(img: Image.Image) -> Image.Image:
    """16-bit (or 32-bit integer) grey to 8 bits, rounding 0..65535 onto 0..255."""
    wide = np.asarray(img).astype(np.uint32)
    return Image.fromarray(((np.clip(wide, 0, 65535) + 128) // 257).astype(np.uint8), "L")


def _to_srgb(img: Image.Image) -> Image.Image:
    try:
        transform = _transform_to_srgb(img.info["icc_profile"], img.mode)
        return ImageCms.applyTransform(img, transform)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return img.convert("RGB")  # a broken profile: plain conversion beats refusing


@functools.lru_cache(maxsize=32)
def _transform_to_srgb(profile: bytes, mode: str) -> ImageCms.ImageCmsTransform:
    source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
    return ImageCms.buildTransform(source, ImageCms.createProfile("sRGB"), mode, "RGB")
