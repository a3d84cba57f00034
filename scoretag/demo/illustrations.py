"""Procedurally drawn illustrations for the demo dataset, one drawing function per style.

A motif is composed as a handful of shapes in unit coordinates and each style renders those
shapes its own way, so what tells two images apart is the style, which is what the booru style
tags (and a later stage that maps them) are about. Everything heavy is bounded by a shape's box
or done once per image, so a picture costs a few milliseconds.
"""

from __future__ import annotations

import colorsys
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

STYLES = ("flat", "lineart", "monochrome", "pixel_art", "comic", "3d", "traditional")
MOTIFS = ("character", "landscape", "still_life", "house")

Size = tuple[int, int]
Color = tuple[int, int, int]
Point = tuple[float, float]
INK: Color = (24, 20, 28)


@dataclass(frozen=True)
class Shape:
    """A filled shape in unit coordinates; an ellipse or a rect is given by two corners."""

    kind: str = "polygon"
    points: tuple[Point, ...] = ()
    color: Color = (128, 128, 128)


def _palette(rng: np.random.Generator, n: int, sat=(0.35, 0.8), val=(0.55, 0.95)) -> list[Color]:
    # Hues spread around the wheel so neighbouring shapes stay distinguishable.
    base = rng.uniform()
    colors = []
    for i in range(n):
        hue = (base + i / n + rng.uniform(-0.05, 0.05)) % 1.0
        r, g, b = colorsys.hsv_to_rgb(hue, rng.uniform(*sat), rng.uniform(*val))
        colors.append((int(r * 255), int(g * 255), int(b * 255)))
    return colors


def _ellipse(cx: float, cy: float, rx: float, ry: float, color: Color) -> Shape:
    return Shape("ellipse", ((cx - rx, cy - ry), (cx + rx, cy + ry)), color)


def _rect(x0: float, y0: float, x1: float, y1: float, color: Color) -> Shape:
    return Shape("rect", ((x0, y0), (x1, y1)), color)


def _polygon(points, color: Color) -> Shape:
    return Shape("polygon", tuple((float(x), float(y)) for x, y in points), color)


def _character(rng: np.random.Generator, k: float) -> list[Shape]:
    skin, hair, cloth, eyes = _palette(rng, 4)
    cx, s, hy = rng.uniform(0.35, 0.65), rng.uniform(0.8, 1.1), rng.uniform(0.36, 0.46)
    hr, hk = 0.15 * s, 0.15 * s * 0.9 * k
    body = [
        (cx - 0.24 * s * k, 1.02),
        (cx - 0.1 * s * k, hy + hr * 0.8),
        (cx + 0.1 * s * k, hy + hr * 0.8),
        (cx + 0.24 * s * k, 1.02),
    ]
    spikes = int(rng.integers(4, 8))
    angles = np.linspace(np.pi * 0.95, np.pi * 2.05, 2 * spikes + 1)
    reach = np.where(np.arange(angles.size) % 2 == 1, rng.uniform(1.2, 1.4), 1.05)
    hair_pts = [
        (cx + np.cos(a) * r * hk, hy + np.sin(a) * r * hr)
        for a, r in zip(angles, reach, strict=True)
    ]
    return [
        _polygon(body, cloth),
        _ellipse(cx, hy, hk, hr, skin),
        _polygon(hair_pts + [(cx + hk, hy - 0.2 * hr), (cx - hk, hy - 0.2 * hr)], hair),
        _ellipse(cx - 0.4 * hk, hy + 0.1 * hr, 0.12 * hk, 0.18 * hr, eyes),
        _ellipse(cx + 0.4 * hk, hy + 0.1 * hr, 0.12 * hk, 0.18 * hr, eyes),
    ]


def _landscape(rng: np.random.Generator, k: float) -> list[Shape]:
    sun, far, near, trunk, leaves = _palette(rng, 5)
    shapes = [_ellipse(rng.uniform(0.15, 0.85), rng.uniform(0.12, 0.3), 0.08 * k, 0.08, sun)]
    for base, color in ((rng.uniform(0.45, 0.6), far), (rng.uniform(0.65, 0.8), near)):
        xs, ys = np.linspace(-0.02, 1.02, 9), base + rng.uniform(-0.08, 0.08, 9)
        shapes.append(_polygon([*zip(xs, ys, strict=True), (1.02, 1.02), (-0.02, 1.02)], color))
    for _ in range(int(rng.integers(1, 4))):
        x, y = rng.uniform(0.1, 0.9), rng.uniform(0.78, 0.92)
        shapes.append(_rect(x - 0.015 * k, y - 0.14, x + 0.015 * k, y, trunk))
        shapes.append(_ellipse(x, y - 0.17, 0.07 * k, 0.08, leaves))
    return shapes


def _still_life(rng: np.random.Generator, k: float) -> list[Shape]:
    table, vase, *fruit = _palette(rng, 5)
    top, vx, vw = rng.uniform(0.6, 0.72), rng.uniform(0.3, 0.7), 0.1 * k
    shapes = [
        _rect(-0.02, top, 1.02, 1.02, table),
        _polygon(
            [
                (vx - vw * 0.5, top + 0.03),
                (vx - vw, top - 0.12),
                (vx - vw * 0.4, top - 0.32),
                (vx + vw * 0.4, top - 0.32),
                (vx + vw, top - 0.12),
                (vx + vw * 0.5, top + 0.03),
            ],
            vase,
        ),
    ]
    for color in fruit:
        x, r = rng.uniform(0.1, 0.9), rng.uniform(0.04, 0.07)
        shapes.append(_ellipse(x, top + 0.02 - r * 0.6, r * k, r, color))
    return shapes


def _house(rng: np.random.Generator, k: float) -> list[Shape]:
    ground, wall, roof, door, glass = _palette(rng, 5)
    x0, y0, y1 = rng.uniform(0.12, 0.3), rng.uniform(0.42, 0.52), rng.uniform(0.8, 0.88)
    x1 = x0 + rng.uniform(0.4, 0.55)
    mid = (x0 + x1) / 2
    return [
        _rect(-0.02, y1 - 0.02, 1.02, 1.02, ground),
        _rect(x0, y0, x1, y1, wall),
        _polygon([(x0 - 0.04, y0), (mid, y0 - rng.uniform(0.15, 0.25)), (x1 + 0.04, y0)], roof),
        _rect(mid - 0.04 * k, y1 - 0.18, mid + 0.04 * k, y1, door),
        _rect(x0 + 0.04, y0 + 0.07, x0 + 0.04 + 0.08 * k, y0 + 0.15, glass),
        _rect(x1 - 0.04 - 0.08 * k, y0 + 0.07, x1 - 0.04, y0 + 0.15, glass),
    ]


_MOTIFS: dict[str, Callable[[np.random.Generator, float], list[Shape]]] = {
    "character": _character,
    "landscape": _landscape,
    "still_life": _still_life,
    "house": _house,
}


def compose(motif: str, size: Size, rng: np.random.Generator) -> list[Shape]:
    """The shapes of `motif`, back to front, proportioned for a canvas of `size`."""
    # Horizontal extents are scaled by height/width so circles stay round on wide canvases.
    return _MOTIFS[motif](rng, size[1] / size[0])


def _box(shape: Shape, size: Size) -> tuple[int, int, int, int]:
    xs = [x * (size[0] - 1) for x, _ in shape.points]
    ys = [y * (size[1] - 1) for _, y in shape.points]
    return round(min(xs)), round(min(ys)), round(max(xs)), round(max(ys))


def _paint(draw: ImageDraw.ImageDraw, shape: Shape, size: Size, fill, outline=None, width=0):
    if shape.kind == "polygon":
        pts = [(x * (size[0] - 1), y * (size[1] - 1)) for x, y in shape.points]
        draw.polygon(pts, fill=fill, outline=outline, width=width)
    elif shape.kind == "ellipse":
        draw.ellipse(_box(shape, size), fill=fill, outline=outline, width=width)
    else:
        draw.rectangle(_box(shape, size), fill=fill, outline=outline, width=width)


def _paint_all(draw: ImageDraw.ImageDraw, shapes: list[Shape], size: Size, outline, width: int):
    for shape in shapes:
        _paint(draw, shape, size, fill=shape.color, outline=outline, width=width)


def _outline(shape: Shape, n: int = 32) -> np.ndarray:
    """Closed ring of points along the shape's border, in unit coordinates."""
    (x0, y0), (x1, y1) = shape.points[0], shape.points[-1]
    if shape.kind == "ellipse":
        t = np.linspace(0, 2 * np.pi, n)
        return np.stack(
            [(x0 + x1) / 2 + np.cos(t) * (x1 - x0) / 2, (y0 + y1) / 2 + np.sin(t) * (y1 - y0) / 2],
            axis=1,
        )
    if shape.kind == "rect":
        return np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)])
    return np.array([*shape.points, shape.points[0]])


def _line_width(size: Size) -> int:
    return max(1, round(min(size) / 120))


def _gradient(size: Size, top: Color, bottom: Color) -> np.ndarray:
    t = np.linspace(0.0, 1.0, size[1], dtype=np.float32)[:, None]
    rows = ((1 - t) * np.array(top, np.float32) + t * np.array(bottom, np.float32)).astype(np.uint8)
    return np.ascontiguousarray(np.broadcast_to(rows[:, None, :], (size[1], size[0], 3)))


def _low_freq(size: Size, rng: np.random.Generator, cell: int) -> np.ndarray:
    """Smooth noise with unit variance and features about `cell` pixels wide."""
    coarse = rng.standard_normal((size[1] // cell + 2, size[0] // cell + 2)).astype(np.float32)
    return np.asarray(Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC))


def _flat(motif: str, size: Size, rng: np.random.Generator) -> Image.Image:
    top, bottom = _palette(rng, 2, sat=(0.15, 0.4), val=(0.8, 1.0))
    img = Image.fromarray(_gradient(size, top, bottom))
    _paint_all(ImageDraw.Draw(img), compose(motif, size, rng), size, INK, _line_width(size))
    return img


def _lineart(motif: str, size: Size, rng: np.random.Generator) -> Image.Image:
    img = Image.new("RGB", size, (250, 250, 246))
    draw, scale = ImageDraw.Draw(img), np.array([size[0] - 1, size[1] - 1])
    width = max(1, _line_width(size) // 2)
    for shape in compose(motif, size, rng):
        ring = _outline(shape)
        # Several slightly displaced passes are what makes a stroke read as sketched.
        for _ in range(int(rng.integers(2, 4))):
            pts = (ring + rng.normal(0.0, 0.004, ring.shape)) * scale
            ink = int(rng.integers(10, 90))
            draw.line([tuple(p) for p in pts], fill=(ink, ink, ink), width=width, joint="curve")
        if shape.kind != "polygon" and rng.uniform() < 0.6:
            _hatch(draw, _box(shape, size), rng, width)
    return img


def _hatch(draw: ImageDraw.ImageDraw, box, rng: np.random.Generator, width: int) -> None:
    x0, y0, x1, y1 = box
    cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * 0.3, (y1 - y0) * 0.3
    for t in np.linspace(-1, 1, int(rng.integers(4, 9))):
        draw.line(
            [(cx + t * hw - hw * 0.3, cy + hh), (cx + t * hw + hw * 0.3, cy - hh)],
            fill=(90, 90, 90),
            width=width,
        )


def _monochrome(motif: str, size: Size, rng: np.random.Generator) -> Image.Image:
    flat = _flat(motif, size, rng).convert("L")
    sharp = np.asarray(flat, np.float32)
    soft = np.asarray(flat.filter(ImageFilter.GaussianBlur(min(size) / 30)), np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    xs = np.arange(size[0], dtype=np.float32)[None, :] * np.cos(angle)
    ys = np.arange(size[1], dtype=np.float32)[:, None] * np.sin(angle)
    along = (xs + ys) / max(size)
    # Blending in a blurred copy and a directional light gives forms a soft greyscale shading.
    light = 1.1 - 0.35 * (along - along.min())
    shaded = (0.6 * sharp + 0.4 * soft) * light
    return Image.fromarray(np.clip(shaded, 0, 255).astype(np.uint8))


def _pixel_art(motif: str, size: Size, rng: np.random.Generator) -> Image.Image:
    cells = int(rng.integers(24, 72))
    grid = (max(8, round(cells * size[0] / max(size))), max(8, round(cells * size[1] / max(size))))
    sky, ground = _palette(rng, 2, val=(0.6, 0.95))
    small = Image.new("RGB", grid, sky)
    draw = ImageDraw.Draw(small)
    draw.rectangle((0, grid[1] * 2 // 3, grid[0], grid[1]), fill=ground)
    _paint_all(draw, compose(motif, grid, rng), grid, INK, 1)
    # Four levels per channel give the small, fixed palette that reads as pixel art.
    limited = Image.fromarray(np.asarray(small) // 64 * 85)
    return limited.resize(size, Image.Resampling.NEAREST)


def _comic(motif: str, size: Size, rng: np.random.Generator) -> Image.Image:
    img = Image.new("RGB", size, (255, 255, 255))
    border = max(2, min(size) // 100)
    for x0, y0, x1, y1 in _panels(size, rng, gutter=max(4, min(size) // 40)):
        panel_size = (x1 - x0, y1 - y0)
        panel = Image.fromarray(_screentone(panel_size, rng))
        draw = ImageDraw.Draw(panel)
        _paint_all(draw, compose(motif, panel_size, rng), panel_size, (0, 0, 0), border)
        _speech_bubble(draw, panel_size, rng, border)
        img.paste(panel, (x0, y0))
        ImageDraw.Draw(img).rectangle((x0, y0, x1 - 1, y1 - 1), outline=(0, 0, 0), width=border)
    return img


def _panels(size: Size, rng: np.random.Generator, gutter: int) -> list[tuple[int, int, int, int]]:
    w, h = size
    rows = int(rng.integers(1, 3))
    cuts = [0, round(h * rng.uniform(0.4, 0.6)), h] if rows == 2 else [0, h]
    boxes = []
    for top, bottom in pairwise(cuts):
        cols = int(rng.integers(1, 3)) if rows == 2 else int(rng.integers(2, 4))
        inner = (np.arange(1, cols) + rng.uniform(-0.2, 0.2, cols - 1)) / cols
        xs = [0, *(round(w * f) for f in inner), w]
        for left, right in pairwise(xs):
            boxes.append((left + gutter, top + gutter, right - gutter, bottom - gutter))
    return [b for b in boxes if b[2] - b[0] > 8 and b[3] - b[1] > 8]


def _screentone(size: Size, rng: np.random.Generator) -> np.ndarray:
    (paper,) = _palette(rng, 1, sat=(0.05, 0.3), val=(0.88, 1.0))
    spacing = int(rng.integers(5, 9))
    radius = spacing * rng.uniform(0.2, 0.35)
    yy, xx = np.ogrid[0 : size[1], 0 : size[0]]
    dots = (xx % spacing - spacing / 2) ** 2 + (yy % spacing - spacing / 2) ** 2 < radius**2
    dark = np.array(paper, np.float32) * 0.7
    return np.where(dots[..., None], dark, np.array(paper, np.float32)).astype(np.uint8)


def _speech_bubble(draw: ImageDraw.ImageDraw, size: Size, rng: np.random.Generator, lw: int):
    w, h = size
    bw, bh = w * rng.uniform(0.3, 0.5), h * rng.uniform(0.15, 0.25)
    x0, y0 = w * rng.uniform(0.03, 0.97 - bw / w), h * rng.uniform(0.03, 0.3)
    tip = (x0 + bw * rng.uniform(0.2, 0.8), y0 + bh * 1.6)
    draw.polygon(
        [(x0 + bw * 0.4, y0 + bh * 0.8), (x0 + bw * 0.6, y0 + bh * 0.8), tip],
        fill=(255, 255, 255),
        outline=(0, 0, 0),
        width=lw,
    )
    draw.ellipse((x0, y0, x0 + bw, y0 + bh), fill=(255, 255, 255), outline=(0, 0, 0), width=lw)
    for i in range(int(rng.integers(1, 4))):
        y = y0 + bh * (0.35 + 0.15 * i)
        draw.line(
            [(x0 + bw * 0.25, y), (x0 + bw * rng.uniform(0.5, 0.75), y)],
            fill=(0, 0, 0),
            width=max(1, lw // 2 + 1),
        )


def _unit(*v: float) -> np.ndarray:
    a = np.array(v, np.float32)
    return a / np.linalg.norm(a)


def _shade(color: Color, normal: tuple[float, float, float], light: np.ndarray) -> Color:
    lit = 0.3 + 0.7 * max(0.0, float(np.dot(normal, light)))
    return tuple(min(255, int(c * lit)) for c in color)


def _three_d(motif: str, size: Size, rng: np.random.Generator) -> Image.Image:
    w, h = size
    # The light comes from the front and above; image y grows downwards.
    light = _unit(rng.uniform(-1, 1), rng.uniform(-1, -0.2), rng.uniform(0.5, 1.0))
    horizon = int(h * rng.uniform(0.55, 0.7))
    wall, floor = _palette(rng, 2, sat=(0.1, 0.3), val=(0.6, 0.9))
    dim = lambda c, f: tuple(int(x * f) for x in c)  # noqa: E731
    img = Image.fromarray(
        np.concatenate(
            [
                _gradient((w, horizon), wall, dim(wall, 0.8)),
                _gradient((w, h - horizon), dim(floor, 0.7), floor),
            ]
        )
    )
    shapes = compose(motif, size, rng)
    standing = [s for s in shapes if s.kind != "polygon" and _box(s, size)[3] > horizon]
    _drop_shadows(img, standing, light)
    draw = ImageDraw.Draw(img)
    for shape in shapes:
        if shape.kind == "ellipse":
            _paste_ellipsoid(img, _box(shape, size), shape.color, light)
        elif shape.kind == "rect":
            _draw_box(draw, _box(shape, size), shape.color, light)
        else:
            _paint(draw, shape, size, fill=_shade(shape.color, (0.0, 0.0, 1.0), light))
    return _light_falloff(img, light)


def _light_falloff(img: Image.Image, light: np.ndarray) -> Image.Image:
    # A nearby light dims with distance, so even flat faces carry a gradient, as in a render.
    w, h = img.size
    spot_x, spot_y = (0.5 + 0.5 * light[0]) * w, (0.5 + 0.5 * light[1]) * h
    dx = ((np.arange(w, dtype=np.float32) - spot_x) / max(w, h))[None, :]
    dy = ((np.arange(h, dtype=np.float32) - spot_y) / max(w, h))[:, None]
    gain = 1.15 - 0.45 * np.sqrt(dx * dx + dy * dy)
    lit = np.asarray(img, np.float32) * gain[..., None]
    return Image.fromarray(np.clip(lit, 0, 255, out=lit).astype(np.uint8))


def _drop_shadows(img: Image.Image, shapes: list[Shape], light: np.ndarray) -> None:
    mask = Image.new("L", img.size, 0)
    draw = ImageDraw.Draw(mask)
    for shape in shapes:
        x0, y0, x1, y1 = _box(shape, img.size)
        dx, half = -light[0] * (x1 - x0) * 0.4, max(2, (y1 - y0) // 10)
        draw.ellipse((x0 + dx, y1 - half, x1 + dx, y1 + half), fill=140)
    mask = mask.filter(ImageFilter.GaussianBlur(max(1, min(img.size) // 60)))
    img.paste(Image.new("RGB", img.size, (20, 18, 24)), mask=mask)


def _paste_ellipsoid(img: Image.Image, box, color: Color, light: np.ndarray) -> None:
    x0, y0, x1, y1 = box
    bw, bh = max(2, x1 - x0), max(2, y1 - y0)
    nx = ((np.arange(bw, dtype=np.float32) + 0.5) / bw * 2 - 1)[None, :]
    ny = ((np.arange(bh, dtype=np.float32) + 0.5) / bh * 2 - 1)[:, None]
    d2 = nx * nx + ny * ny
    nz = np.sqrt(np.clip(1 - d2, 0, 1))
    diffuse = np.clip(nx * light[0] + ny * light[1] + nz * light[2], 0, None)
    half = _unit(light[0], light[1], light[2] + 1)  # Blinn-Phong highlight for a frontal viewer
    spec = np.clip(nx * half[0] + ny * half[1] + nz * half[2], 0, None) ** 32
    rgb = np.array(color, np.float32) * (0.22 + 0.78 * diffuse)[..., None] + 200 * spec[..., None]
    # About one pixel of soft edge, so the silhouette is antialiased.
    alpha = np.clip((1 - np.sqrt(d2)) * min(bw, bh) / 2, 0, 1) * 255
    patch = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    img.paste(patch, (x0, y0), Image.fromarray(alpha.astype(np.uint8)))


def _draw_box(draw: ImageDraw.ImageDraw, box, color: Color, light: np.ndarray) -> None:
    x0, y0, x1, y1 = box
    d = 0.35 * min(x1 - x0, y1 - y0)
    draw.polygon(
        [(x0, y0), (x1, y0), (x1 + d, y0 - d), (x0 + d, y0 - d)],
        fill=_shade(color, (0.0, -1.0, 0.0), light),
    )
    draw.polygon(
        [(x1, y0), (x1 + d, y0 - d), (x1 + d, y1 - d), (x1, y1)],
        fill=_shade(color, (1.0, 0.0, 0.0), light),
    )
    draw.rectangle((x0, y0, x1, y1), fill=_shade(color, (0.0, 0.0, 1.0), light))


def _traditional(motif: str, size: Size, rng: np.random.Generator) -> Image.Image:
    w, h = size
    (tint,) = _palette(rng, 1, sat=(0.03, 0.1), val=(0.94, 0.99))
    # Fibres of +-2 levels: far below the `noise` degradation, which starts at sigma 8.
    fibres = rng.integers(-2, 3, (h, w), dtype=np.int8).astype(np.float32) / 255
    texture = 1 + 0.02 * _low_freq(size, rng, 48) + fibres
    paper = np.array(tint, np.float32)[None, None, :] / 255 * texture[..., None]
    granulation = 1 + 0.15 * _low_freq(size, rng, 16)
    shapes = compose(motif, size, rng)
    for shape in shapes:
        _wash(paper, shape, granulation, rng)
    img = Image.fromarray((np.clip(paper, 0, 1) * 255).astype(np.uint8))
    draw, scale = ImageDraw.Draw(img), np.array([w - 1, h - 1])
    for shape in shapes[:: int(rng.integers(1, 3))]:
        pts = (_outline(shape) + rng.normal(0.0, 0.003, (len(_outline(shape)), 2))) * scale
        draw.line([tuple(p) for p in pts], fill=(120, 115, 110), width=1)  # pencil underdrawing
    return img


def _wash(paper: np.ndarray, shape: Shape, granulation: np.ndarray, rng: np.random.Generator):
    h, w = paper.shape[:2]
    margin = max(4, min(w, h) // 30)
    x0, y0, x1, y1 = _box(shape, (w, h))
    x0, y0 = max(0, x0 - margin), max(0, y0 - margin)
    x1, y1 = min(w, x1 + margin), min(h, y1 + margin)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    ring = _outline(shape, 40) * [w - 1, h - 1] - [x0, y0]
    ring += rng.normal(0.0, margin / 3, ring.shape)
    mask = Image.new("L", (x1 - x0, y1 - y0), 0)
    ImageDraw.Draw(mask).polygon([tuple(p) for p in ring], fill=255)
    m = np.asarray(mask.filter(ImageFilter.GaussianBlur(margin / 3)), np.float32) / 255
    # Pigment pools where a wash dries, so the rim comes out darker than the middle.
    density = (0.45 * m + 1.2 * m * (1 - m)) * granulation[y0:y1, x0:x1] * rng.uniform(0.7, 0.95)
    absorbed = 1 - np.array(shape.color, np.float32) / 255
    paper[y0:y1, x0:x1] *= 1 - np.clip(density, 0, 1)[..., None] * absorbed


_DRAWERS: dict[str, Callable[[str, Size, np.random.Generator], Image.Image]] = {
    "flat": _flat,
    "lineart": _lineart,
    "monochrome": _monochrome,
    "pixel_art": _pixel_art,
    "comic": _comic,
    "3d": _three_d,
    "traditional": _traditional,
}


def draw_illustration(style: str, motif: str, size: Size, rng: np.random.Generator) -> Image.Image:
    """`motif` drawn in `style` on a canvas of `size` (width, height): RGB, or L for monochrome."""
    if style not in _DRAWERS or motif not in _MOTIFS:
        raise ValueError(f"unknown style {style!r} or motif {motif!r}")
    return _DRAWERS[style](motif, size, rng)
