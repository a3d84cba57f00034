"""Controlled degradations: the ground truth that the demo's simulated labeler rates from.

Each kind has four levels and its effect grows with the level, so `quality = 5 - level` is a
fair label whatever the kind. The tables are indexed by level; index 0 is the pristine image.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from io import BytesIO
from statistics import NormalDist

import numpy as np
from PIL import Image, ImageFilter

KINDS = ("blur", "noise", "jpeg", "downscale")
MAX_LEVEL = 4

# Radii are for a 512 px long side and scale with the image, so that the loss looks the same
# once a scorer has resized the picture to its input size.
BLUR_RADIUS = (0.0, 1.0, 2.0, 3.5, 6.0)
NOISE_SIGMA = (0.0, 8.0, 16.0, 28.0, 45.0)
JPEG_QUALITY = (100, 40, 20, 10, 5)
DOWNSCALE_FACTOR = (1, 2, 3, 4, 6)


def _blur(img: Image.Image, level: int, rng: np.random.Generator) -> Image.Image:
    radius = BLUR_RADIUS[level] * max(img.size) / 512
    return img.filter(ImageFilter.GaussianBlur(radius))


@functools.cache
def _normal_quantiles() -> np.ndarray:
    return np.array([NormalDist().inv_cdf((i + 0.5) / 65536) for i in range(65536)], np.float32)


def _noise(img: Image.Image, level: int, rng: np.random.Generator) -> Image.Image:
    pixels = np.asarray(img, np.float32)
    # Gaussian samples by table lookup on 16-bit uniforms: 3x cheaper than standard_normal
    # and indistinguishable at 8-bit output.
    noise = _normal_quantiles()[rng.integers(0, 65536, pixels.shape, dtype=np.uint16)]
    noisy = pixels + noise * NOISE_SIGMA[level] + 0.5
    return Image.fromarray(np.clip(noisy, 0, 255, out=noisy).astype(np.uint8))


def _jpeg(img: Image.Image, level: int, rng: np.random.Generator) -> Image.Image:
    buf = BytesIO()
    img.save(buf, "JPEG", quality=JPEG_QUALITY[level])
    with Image.open(BytesIO(buf.getvalue())) as decoded:
        return decoded.convert(img.mode)


def _downscale(img: Image.Image, level: int, rng: np.random.Generator) -> Image.Image:
    # Box-reduce then bilinear back up: the look of an upscaled thumbnail.
    small = img.reduce(DOWNSCALE_FACTOR[level])
    return small.resize(img.size, Image.Resampling.BILINEAR)


_APPLY: dict[str, Callable[[Image.Image, int, np.random.Generator], Image.Image]] = {
    "blur": _blur,
    "noise": _noise,
    "jpeg": _jpeg,
    "downscale": _downscale,
}


def degrade(img: Image.Image, kind: str, level: int, rng: np.random.Generator) -> Image.Image:
    """`img` (RGB or L) with degradation `kind` at `level` (0..4); level 0 means kind "none"."""
    if (kind == "none") != (level == 0) or not 0 <= level <= MAX_LEVEL:
        raise ValueError(f"inconsistent degradation {kind!r} at level {level}")
    if level == 0:
        return img
    return _APPLY[kind](img, level, rng)
