"""File encoding for the demo images, above all the files a real scrape turns up besides plain
RGB pictures.

Unusual but valid files (CMYK, palette with transparency, grey with alpha, 16-bit grey, EXIF
rotation, animation) test that later stages normalise what they read; decompression bombs and
broken files (truncated, empty, an HTML page saved as .png) test that they refuse and count.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from io import BytesIO

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

Size = tuple[int, int]

# The manifest's `failure` for each special kind that no reader should accept.
FAILURES = {
    "huge": "too_large",
    "truncated_jpeg": "truncated",
    "truncated_png": "truncated",
    "zero_bytes": "empty",
    "text_as_png": "not_an_image",
}

_FORMATS = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF"}
# Fast settings: the demo has to build in seconds. None of them writes a timestamp.
_SAVE_PARAMS: dict[str, dict] = {
    "jpg": {"quality": 92},
    "png": {"compress_level": 1},
    "webp": {"quality": 90, "method": 0},
    "gif": {},
}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOR_TYPE = {"L": 0, "RGB": 2}
_ADLER_BASE = 65521


@dataclass(frozen=True)
class EncodedFile:
    """File bytes plus what a reader should find in them (size as stored, PIL mode)."""

    data: bytes = b""
    ext: str = "png"
    width: int = 0
    height: int = 0
    mode: str = ""
    orientation: int = 1


def _png_chunk(tag: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))


def _png(width: int, height: int, color_type: int, idat: bytes) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (
        _PNG_SIGNATURE
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def fast_png(img: Image.Image) -> bytes:
    """An 8-bit L or RGB PNG, every row filtered "Up" and deflated with Z_RLE.

    PIL tries all five filters on every row, which costs more than the compression itself;
    one fixed filter and run-length deflate are 2-3x faster and no larger on these pictures.
    """
    rows = np.asarray(img).reshape(img.height, -1)
    filtered = np.empty((img.height, rows.shape[1] + 1), np.uint8)
    filtered[:, 0] = 2
    filtered[0, 0], filtered[0, 1:] = 0, rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])
    comp = zlib.compressobj(1, zlib.DEFLATED, 15, 8, zlib.Z_RLE)
    idat = comp.compress(filtered.tobytes()) + comp.flush()
    return _png(img.width, img.height, _PNG_COLOR_TYPE[img.mode], idat)


def save(img: Image.Image, ext: str, mode: str | None = None, **params) -> EncodedFile:
    """`img` encoded as `ext`; `mode` is what PIL reports when reading it back."""
    if ext == "png" and img.mode in _PNG_COLOR_TYPE and not params:
        return EncodedFile(fast_png(img), ext, img.width, img.height, img.mode)
    buf = BytesIO()
    img.save(buf, _FORMATS[ext], **{**_SAVE_PARAMS[ext], **params})
    if mode is None:
        # WebP has no grey mode: an L picture comes back as RGB.
        mode = "RGB" if ext == "webp" else img.mode
    return EncodedFile(buf.getvalue(), ext, img.width, img.height, mode)


def _silhouette(size: Size, rng: np.random.Generator) -> Image.Image:
    """A blob of overlapping ellipses around the centre: the 'sticker' kept opaque."""
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    w, h = size
    for _ in range(int(rng.integers(2, 5))):
        cx, cy = w * rng.uniform(0.35, 0.65), h * rng.uniform(0.35, 0.65)
        rx, ry = w * rng.uniform(0.2, 0.35), h * rng.uniform(0.2, 0.35)
        draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=255)
    return mask


def _indexed(img: Image.Image) -> Image.Image:
    """255-colour palette image; index 255 is left free for a transparent or marker colour."""
    indexed = img.convert("RGB").quantize(255, method=Image.Quantize.FASTOCTREE)
    indexed.putpalette((indexed.getpalette() + [0] * 768)[:765] + [0, 0, 0])
    return indexed


def cmyk_jpeg(img: Image.Image, rng: np.random.Generator) -> EncodedFile:
    return save(img.convert("RGB").convert("CMYK"), "jpg")


def palette_alpha_png(img: Image.Image, rng: np.random.Generator) -> EncodedFile:
    indexed = _indexed(img)
    indexed.paste(255, mask=ImageOps.invert(_silhouette(img.size, rng)))
    return save(indexed, "png", transparency=255)


def la_png(img: Image.Image, rng: np.random.Generator) -> EncodedFile:
    alpha = _silhouette(img.size, rng).filter(ImageFilter.GaussianBlur(min(img.size) / 30))
    return save(Image.merge("LA", (img.convert("L"), alpha)), "png")


def gray16_png(img: Image.Image, rng: np.random.Generator) -> EncodedFile:
    # x * 257 maps 0..255 onto the full 0..65535 range, as a 16-bit scanner export would.
    wide = np.asarray(img.convert("L"), np.uint16) * np.uint16(257)
    return save(Image.fromarray(wide), "png", mode="I;16")


# Pixels are stored turned the other way, so that honouring the tag shows them upright.
_STORED_TURN = {
    3: Image.Transpose.ROTATE_180,
    6: Image.Transpose.ROTATE_90,
    8: Image.Transpose.ROTATE_270,
}


def exif_rotated_jpeg(img: Image.Image, rng: np.random.Generator) -> EncodedFile:
    orientation = int(rng.choice(list(_STORED_TURN)))
    exif = Image.Exif()
    exif[0x0112] = orientation
    encoded = save(img.transpose(_STORED_TURN[orientation]), "jpg", exif=exif.tobytes())
    return replace(encoded, orientation=orientation)


def animated(img: Image.Image, rng: np.random.Generator) -> EncodedFile:
    """A GIF or animated WebP whose first frame is the picture; a marker moves in the rest."""
    as_gif = rng.uniform() < 0.5
    # A GIF's frames share one quantisation; the marker takes the free palette index 255.
    first = _indexed(img) if as_gif else img.convert("RGB")
    marker = 255 if as_gif else tuple(int(c) for c in rng.integers(0, 256, 3))
    if as_gif:
        first.putpalette(first.getpalette()[:765] + [int(c) for c in rng.integers(0, 256, 3)])
    w, h = first.size
    frames = [first]
    for i in range(1, int(rng.integers(3, 5))):
        frame = first.copy()
        x, y, r = w * (0.15 + 0.2 * i), h * (0.2 + 0.15 * i), min(w, h) * 0.1
        ImageDraw.Draw(frame).ellipse((x - r, y - r, x + r, y + r), fill=marker)
        frames.append(frame)
    timing = {"save_all": True, "append_images": frames[1:], "duration": 120, "loop": 0}
    if as_gif:
        # An identity grey palette would make PIL report L; a quantised one never is.
        return save(first, "gif", "P", **timing)
    return save(first, "webp", "RGBA", quality=80, **timing)


def _truncated(img: Image.Image, rng: np.random.Generator, ext: str) -> EncodedFile:
    whole = save(img, ext)
    # Cut well past the header: the file opens, and fails only when the pixels are read.
    return replace(whole, data=whole.data[: int(len(whole.data) * rng.uniform(0.35, 0.45))])


def truncated_jpeg(img: Image.Image, rng: np.random.Generator) -> EncodedFile:
    return _truncated(img, rng, "jpg")


def truncated_png(img: Image.Image, rng: np.random.Generator) -> EncodedFile:
    return _truncated(img, rng, "png")


def zero_bytes(size: Size, rng: np.random.Generator) -> EncodedFile:
    return EncodedFile(b"", "jpg", 0, 0, "")


_ERROR_PAGES = (
    ("403 Forbidden", "cloudflare"),
    ("404 Not Found", "nginx"),
    ("429 Too Many Requests", "nginx"),
    ("503 Service Temporarily Unavailable", "openresty"),
)


def text_as_png(size: Size, rng: np.random.Generator) -> EncodedFile:
    """The error page a scraper saved under the image's name; `size` is what it meant to get."""
    title, server = _ERROR_PAGES[int(rng.integers(len(_ERROR_PAGES)))]
    request_id = "".join(f"{b:02x}" for b in rng.integers(0, 256, 8))
    page = (
        f"<!DOCTYPE html>\n<html>\n<head><title>{title}</title></head>\n<body>\n"
        f"<center><h1>{title}</h1></center>\n<hr><center>{server}</center>\n"
        f"<!-- request id: {request_id} -->\n</body>\n</html>\n"
    )
    return EncodedFile(page.encode(), "png", size[0], size[1], "")


def _deflate_alone(raw: bytes) -> bytes:
    # A full flush leaves no back-references across the boundary, so such segments concatenate.
    comp = zlib.compressobj(1, zlib.DEFLATED, -15)
    return comp.compress(raw) + comp.flush(zlib.Z_FULL_FLUSH)


def _adler32_concat(first: int, second: int, second_len: int) -> int:
    """Adler-32 of two byte strings joined, from the checksum of each (as zlib's combine)."""
    a = ((first & 0xFFFF) + (second & 0xFFFF) - 1) % _ADLER_BASE
    b = ((first >> 16) + (second >> 16) + second_len * ((first & 0xFFFF) - 1)) % _ADLER_BASE
    return (b << 16) | a


def _banded_idat(bands: np.ndarray, height: int) -> bytes:
    """zlib stream of an 8-bit grey image made of horizontal bands of one repeated row each.

    Within a band every row but the first is filtered "Up" and so all zeros; that run is
    deflated once per length and reused, so a 100-megapixel image costs a few milliseconds.
    """
    width, per_band = bands.shape[1], -(-height // len(bands))
    up_row = b"\x02" + bytes(width)
    runs: dict[int, tuple[bytes, int]] = {}
    parts, adler, left = [b"\x78\x01"], 1, height
    for band in bands:
        rows = min(per_band, left)
        left -= rows
        if rows == 0:
            break
        if rows - 1 not in runs:
            raw = up_row * (rows - 1)
            runs[rows - 1] = (_deflate_alone(raw), zlib.adler32(raw))
        first = b"\x00" + band.tobytes()
        parts += [_deflate_alone(first), runs[rows - 1][0]]
        adler = _adler32_concat(adler, zlib.adler32(first), len(first))
        adler = _adler32_concat(adler, runs[rows - 1][1], (rows - 1) * len(up_row))
    parts += [zlib.compressobj(1, zlib.DEFLATED, -15).flush(), struct.pack(">I", adler)]
    return b"".join(parts)


def huge_png(size: Size, rng: np.random.Generator) -> EncodedFile:
    """A >100-megapixel grey PNG of smooth waves: a decompression bomb that is cheap to make."""
    width, height = int(rng.integers(10_500, 12_001)), int(rng.integers(9_600, 11_001))
    fx, fy, phase = rng.uniform(1, 4), rng.uniform(1, 3), rng.uniform(0, 2 * np.pi)
    x = np.linspace(0, 1, width)[None, :]
    y = (np.arange(160)[:, None] + 0.5) / 160
    waves = 0.5 + 0.5 * np.sin(2 * np.pi * (fx * x + fy * y) + phase)
    bands = (40 + 150 * waves).astype(np.uint8)
    return EncodedFile(
        _png(width, height, 0, _banded_idat(bands, height)), "png", width, height, "L"
    )


# Specials drawn from the planned picture, and those made without one.
FROM_PICTURE: dict[str, Callable[[Image.Image, np.random.Generator], EncodedFile]] = {
    "cmyk": cmyk_jpeg,
    "palette_alpha": palette_alpha_png,
    "la": la_png,
    "gray16": gray16_png,
    "exif_rotated": exif_rotated_jpeg,
    "animated": animated,
    "truncated_jpeg": truncated_jpeg,
    "truncated_png": truncated_png,
}
WITHOUT_PICTURE: dict[str, Callable[[Size, np.random.Generator], EncodedFile]] = {
    "huge": huge_png,
    "zero_bytes": zero_bytes,
    "text_as_png": text_as_png,
}
