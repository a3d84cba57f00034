"""Decoding as a person would see the file, and refusals with the right reason."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image, ImageCms

from assets.images.decode import DEFAULT_MAX_PIXELS, REASONS, Unusable, decode, read_bytes

WHITE = (255, 255, 255)


def _encoded(img: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


def _reason(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> str:
    with pytest.raises(Unusable) as refused:
        decode(data, max_pixels)
    assert refused.value.reason in REASONS
    return refused.value.reason


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (40, 20), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 10, 20))  # red on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: a viewer turns it 90 degrees clockwise
    shown = decode(_encoded(img, "JPEG", exif=exif.tobytes(), quality=95), DEFAULT_MAX_PIXELS)
    assert shown.size == (20, 40)
    top = np.asarray(shown)[2, 10]
    assert top[0] > 200 and top[2] < 60  # the red left edge is now on top


def test_cmyk_jpeg_becomes_rgb():
    shown = decode(_encoded(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG"), 10**8)
    red = np.asarray(shown)[8, 8]
    assert shown.mode == "RGB" and red[0] > 200 and red[1] < 60 and red[2] < 60


def test_icc_profile_is_converted_to_srgb():
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB"))
    img = Image.new("RGB", (8, 8), (120, 60, 30))
    data = _encoded(img, "PNG", icc_profile=profile.tobytes())
    shown = decode(data, DEFAULT_MAX_PIXELS)
    assert shown.mode == "RGB" and shown.size == (8, 8)
    # a broken profile is ignored, not fatal
    broken = _encoded(img, "PNG", icc_profile=b"not a profile at all, just bytes")
    assert np.array_equal(np.asarray(decode(broken, DEFAULT_MAX_PIXELS)), np.asarray(img))


def test_palette_transparency_is_composited_on_white():
    img = Image.new("P", (8, 8), 0)
    img.putpalette([0, 0, 0] + [255, 0, 0] * 255)
    img.putpixel((0, 0), 1)
    shown = np.asarray(decode(_encoded(img, "PNG", transparency=0), DEFAULT_MAX_PIXELS))
    assert tuple(shown[4, 4]) == WHITE and tuple(shown[0, 0]) == (255, 0, 0)


def test_grey_with_alpha_is_composited_on_white():
    img = Image.new("LA", (8, 8), (0, 0))
    img.putpixel((1, 1), (0, 255))
    shown = np.asarray(decode(_encoded(img, "PNG"), DEFAULT_MAX_PIXELS))
    assert tuple(shown[4, 4]) == WHITE and tuple(shown[1, 1]) == (0, 0, 0)


def test_sixteen_bit_grey_is_scaled_to_eight():
    wide = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    img = Image.fromarray(wide)
    shown = np.asarray(decode(_encoded(img, "PNG"), DEFAULT_MAX_PIXELS))
    assert shown[0, :, 0].tolist() == [0, 100, 255]


def test_animation_gives_its_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 255, 0))]
    data = _encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    first = np.asarray(decode(data, DEFAULT_MAX_PIXELS))
    assert first[0, 0, 0] > 200 and first[0, 0, 1] < 60


def test_draft_decodes_a_large_jpeg_small():
    data = _encoded(Image.new("RGB", (2048, 1024), (10, 20, 30)), "JPEG")
    assert decode(data, DEFAULT_MAX_PIXELS, draft=(224, 224)).size == (512, 256)
    assert decode(data, DEFAULT_MAX_PIXELS).size == (2048, 1024)


def test_refusals_name_their_reason(tmp_path: Path):
    jpeg = _encoded(Image.new("RGB", (64, 64), (1, 2, 3)), "JPEG")
    assert _reason(b"") == "empty"
    assert _reason(b"<!DOCTYPE html><html><body>403</body></html>") == "not_an_image"
    assert _reason(jpeg[: len(jpeg) // 2]) == "truncated"  # cut in the headers
    assert _reason(jpeg[:-10]) == "truncated"  # cut in the scan
    assert _reason(jpeg, max_pixels=64 * 64 - 1) == "too_large"
    assert _reason(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40) == "corrupt"
    assert _reason(b"RIFF\x00\x00\x00\x00WEBPVP8 garbage") == "corrupt"
    with pytest.raises(Unusable) as missing:
        read_bytes(tmp_path / "gone.jpg")
    assert missing.value.reason == "missing"


def test_a_tar_member_is_read_by_offset(tmp_path: Path):
    path = tmp_path / "blob"
    path.write_bytes(b"xxxxHELLOyyyy")
    assert read_bytes(path, 4, 5) == b"HELLO"
    assert read_bytes(path) == b"xxxxHELLOyyyy"


def test_the_demo_images_decode_or_fail_as_their_manifest_says(demo_layout):
    manifest = pl.read_parquet(demo_layout.home / "demo" / "images.parquet")
    outcomes = []
    for row in manifest.iter_rows(named=True):  # 600 files: a test, not a catalog
        try:
            shown = decode(read_bytes(demo_layout.images / row["file_name"]), DEFAULT_MAX_PIXELS)
            rotated = row["orientation"] in (5, 6, 7, 8)
            size = (row["height"], row["width"]) if rotated else (row["width"], row["height"])
            assert shown.mode == "RGB" and shown.size == size, row
            outcomes.append("")
        except Unusable as e:
            outcomes.append(e.reason)
    assert outcomes == manifest["failure"].to_list()
    assert manifest.filter(pl.col("special") != "")["special"].n_unique() >= 8
