"""The demo dataset's image files and their manifest, the ground truth later stages are tested on.

Every image is planned and drawn from its own generator seeded by `[seed, image_id]`, so a
file's bytes depend on neither the order of generation nor the number of workers. Files are
named `<md5>.<ext>`, as boorus name them.
"""

from __future__ import annotations

import functools
import hashlib
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import skimage.data
from PIL import Image

from orchestration.atomic import write_bytes
from scoretag.demo import odd_files
from scoretag.demo.degrade import KINDS, MAX_LEVEL, degrade
from scoretag.demo.illustrations import MOTIFS, STYLES, draw_illustration

# The skimage.data pictures that ship inside the wheel (the others need pooch and a network).
PHOTOS = (
    "astronaut",
    "camera",
    "chelsea",
    "coffee",
    "coins",
    "hubble_deep_field",
    "immunohistochemistry",
    "moon",
    "retina",
    "rocket",
    "brick",
    "grass",
    "gravel",
    "clock",
    "cell",
    "colorwheel",
    "logo",
)
MIN_CROP = 0.6  # a photo crop keeps at least this share of each side
PHOTO_SHARE = 0.25
ASPECTS = ((2, 3), (3, 4), (1, 1), (4, 3), (16, 9))
LONG_SIDE = (256, 768)
LARGE_SHARE, LARGE_LONG_SIDE = 0.02, (1500, 2048)
FORMAT_SHARES = {"jpg": 0.55, "png": 0.30, "webp": 0.15}

# Specials per 600 images; smaller builds scale these down but keep one of each from 60 up.
SPECIAL_COUNTS = {
    "huge": 3,
    "cmyk": 6,
    "palette_alpha": 6,
    "la": 4,
    "gray16": 6,
    "exif_rotated": 4,
    "animated": 3,
    "truncated_jpeg": 2,
    "truncated_png": 1,
    "zero_bytes": 1,
    "text_as_png": 1,
}
REFERENCE_SIZE, MIN_SIZE_FOR_ALL_SPECIALS = 600, 60
_PLAN_STREAM = 0x5C0E7A6  # keeps the special-assignment stream apart from any [seed, image_id]

MANIFEST_SCHEMA: dict[str, pl.DataType] = {
    "image_id": pl.Int64,
    "md5": pl.String,
    "sha512": pl.String,
    "file_name": pl.String,
    "file_ext": pl.String,
    "file_size": pl.Int64,
    "width": pl.Int64,
    "height": pl.Int64,
    "orientation": pl.Int64,
    "mode": pl.String,
    "origin": pl.String,
    "subject": pl.String,
    "style": pl.String,
    "degradation": pl.String,
    "level": pl.Int64,
    "quality": pl.Int64,
    "special": pl.String,
    "usable": pl.Boolean,
    "failure": pl.String,
}


@dataclass(frozen=True)
class ImageSpec:
    """What one image is meant to be; the pixels follow from it and its generator."""

    image_id: int = 0
    seed: int = 0
    origin: str = "illustration"
    subject: str = "character"
    style: str = "flat"
    width: int = 512
    height: int = 512
    degradation: str = "none"
    level: int = 0
    file_ext: str = "jpg"  # for a regular file; a special kind's encoder picks its own format
    special: str = ""


def special_counts(n_images: int) -> dict[str, int]:
    """How many files of each special kind a build of `n_images` holds."""
    scaled = {k: round(c * n_images / REFERENCE_SIZE) for k, c in SPECIAL_COUNTS.items()}
    if n_images >= MIN_SIZE_FOR_ALL_SPECIALS:
        scaled = {k: max(1, c) for k, c in scaled.items()}
    return scaled


def _streams(seed: int, image_id: int) -> tuple[np.random.Generator, np.random.Generator]:
    # One stream plans the image, the other draws it: drawing can change without replanning.
    plan, pixels = np.random.SeedSequence([seed, image_id]).spawn(2)
    return np.random.default_rng(plan), np.random.default_rng(pixels)


def _assign_specials(seed: int, n_images: int) -> dict[int, str]:
    order = np.random.default_rng([seed, n_images, _PLAN_STREAM]).permutation(n_images)
    kinds = [k for k, c in special_counts(n_images).items() for _ in range(c)]
    return {int(i): kind for i, kind in zip(order, kinds, strict=False)}  # kinds <= ids


def _pick_size(rng: np.random.Generator) -> tuple[int, int]:
    large = rng.uniform() < LARGE_SHARE
    low, high = LARGE_LONG_SIDE if large else LONG_SIDE
    long_side = int(rng.integers(low, high + 1))
    a, b = ASPECTS[int(rng.integers(len(ASPECTS)))]
    short_side = round(long_side * min(a, b) / max(a, b))
    return (long_side, short_side) if a >= b else (short_side, long_side)


def _no_upscale(photo: str, width: int, height: int) -> tuple[int, int]:
    """Shrink a photo's target so that even the smallest crop is not enlarged: an enlarged
    photo looks soft, and its quality would no longer be what its degradation level says."""
    scale = min(1.0, MIN_CROP * max(_photo(photo).size) / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def plan_image(seed: int, image_id: int, special: str = "") -> ImageSpec:
    """The spec of image `image_id`; `special` is decided for the whole build by plan_images."""
    rng = _streams(seed, image_id)[0]
    # Every draw happens whatever the branch, so one choice never shifts the next ones.
    is_photo = rng.uniform() < PHOTO_SHARE
    photo, motif, style = rng.choice(PHOTOS), rng.choice(MOTIFS), rng.choice(STYLES)
    width, height = _pick_size(rng)
    if is_photo:
        width, height = _no_upscale(str(photo), width, height)
    level, kind = int(rng.integers(0, MAX_LEVEL + 1)), str(rng.choice(KINDS))
    ext = str(rng.choice(list(FORMAT_SHARES), p=list(FORMAT_SHARES.values())))
    if special == "huge":  # smooth grey waves, whatever was drawn above
        return ImageSpec(
            image_id=image_id,
            seed=seed,
            subject="gradient",
            style="monochrome",
            width=width,
            height=height,
            file_ext="png",
            special=special,
        )
    if special in odd_files.FAILURES:
        level = 0  # a broken file carries no degradation: nobody will ever see its pixels
    return ImageSpec(
        image_id=image_id,
        seed=seed,
        origin="photo" if is_photo else "illustration",
        subject=str(photo if is_photo else motif),
        style="photo" if is_photo else str(style),
        width=width,
        height=height,
        degradation=kind if level else "none",
        level=level,
        file_ext=ext,
        special=special,
    )


def plan_images(seed: int, n_images: int) -> list[ImageSpec]:
    """The specs of a whole build, by image_id."""
    specials = _assign_specials(seed, n_images)
    return [plan_image(seed, i, specials.get(i, "")) for i in range(n_images)]


@functools.cache
def _photo(name: str) -> Image.Image:
    pixels = getattr(skimage.data, name)()
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        rgba = Image.fromarray(pixels)
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return Image.fromarray(pixels)  # grey photographs stay L


def _photo_crop(name: str, size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    src = _photo(name)
    aspect = size[0] / size[1]
    # Keep the target aspect where the 60% floor on each side allows it, else stretch a little.
    fy = rng.uniform(MIN_CROP, 1.0)
    fx = float(np.clip(fy * src.height * aspect / src.width, MIN_CROP, 1.0))
    fy = float(np.clip(fx * src.width / (src.height * aspect), MIN_CROP, 1.0))
    cw, ch = round(src.width * fx), round(src.height * fy)
    x0, y0 = int(rng.integers(0, src.width - cw + 1)), int(rng.integers(0, src.height - ch + 1))
    img = src.resize(size, Image.Resampling.BICUBIC, box=(x0, y0, x0 + cw, y0 + ch))
    return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.uniform() < 0.5 else img


def _draw(spec: ImageSpec, rng: np.random.Generator) -> Image.Image:
    size = (spec.width, spec.height)
    if spec.origin == "photo":
        img = _photo_crop(spec.subject, size, rng)
    else:
        img = draw_illustration(spec.style, spec.subject, size, rng)
    return degrade(img, spec.degradation, spec.level, rng)


def draw_image(spec: ImageSpec) -> Image.Image:
    """The upright picture of `spec`, degraded, before any special encoding."""
    return _draw(spec, _streams(spec.seed, spec.image_id)[1])


def _encode(spec: ImageSpec) -> odd_files.EncodedFile:
    rng = _streams(spec.seed, spec.image_id)[1]
    if spec.special in odd_files.WITHOUT_PICTURE:
        return odd_files.WITHOUT_PICTURE[spec.special]((spec.width, spec.height), rng)
    img = _draw(spec, rng)
    if spec.special:
        return odd_files.FROM_PICTURE[spec.special](img, rng)
    return odd_files.save(img, spec.file_ext)


def render_file(spec: ImageSpec, out_dir: Path) -> dict:
    """Writes the file of `spec` into `out_dir` and returns its manifest row."""
    encoded = _encode(spec)
    md5 = hashlib.md5(encoded.data).hexdigest()
    file_name = f"{md5}.{encoded.ext}"
    write_bytes(out_dir / file_name, encoded.data)
    return {
        "image_id": spec.image_id,
        "md5": md5,
        "sha512": hashlib.sha512(encoded.data).hexdigest(),
        "file_name": file_name,
        "file_ext": encoded.ext,
        "file_size": len(encoded.data),
        "width": encoded.width,
        "height": encoded.height,
        "orientation": encoded.orientation,
        "mode": encoded.mode,
        "origin": spec.origin,
        "subject": spec.subject,
        "style": spec.style,
        "degradation": spec.degradation,
        "level": spec.level,
        "quality": 5 - spec.level,
        "special": spec.special,
        "usable": spec.special not in odd_files.FAILURES,
        "failure": odd_files.FAILURES.get(spec.special, ""),
    }


def _render_all(specs: list[ImageSpec], out_dir: Path, workers: int) -> list[dict]:
    render = functools.partial(render_file, out_dir=out_dir)
    if workers == 1 or len(specs) < 2:
        return [render(spec) for spec in specs]
    # Biggest first, so that no worker is left alone with a 2048 px picture at the end.
    ordered = sorted(specs, key=lambda s: s.width * s.height, reverse=True)
    # Not fork: the caller may hold threads (polars', torch's, a test runner's) whose locks a
    # forked child inherits held. forkserver forks workers from a clean single-threaded server,
    # near fork's start-up cost. And not multiprocessing.Pool: leaving it SIGTERMs the workers,
    # which a worker with an inherited signal handler survives, and the join then waits for
    # ever; the executor stops its workers by message and raises if one dies.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    with ProcessPoolExecutor(min(workers, len(specs)), mp_context=context) as pool:
        return list(pool.map(render, ordered, chunksize=4))


def build_images(
    out_dir: Path, seed: int = 0, n_images: int = 600, workers: int | None = None
) -> pl.DataFrame:
    """Writes `n_images` files flat into `out_dir` and returns their manifest by image_id.

    Files already in `out_dir` are left alone; rebuilding rewrites identical bytes.
    """
    if n_images < 0 or (workers is not None and workers < 1):
        raise ValueError(f"need n_images >= 0 and workers >= 1, got {n_images}, {workers}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = _render_all(plan_images(seed, n_images), out_dir, workers or os.cpu_count() or 1)
    manifest = pl.DataFrame(rows, schema=MANIFEST_SCHEMA).sort("image_id")
    # Files are named by content, so two equal files would silently become one.
    if manifest["md5"].n_unique() != manifest.height:
        raise AssertionError("two demo images have identical bytes")
    return manifest
