"""The workers' uint8 geometry, normalised on the device, is open_clip's own eval transform."""

from __future__ import annotations

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from assets.embeddings.preprocess import Geometry

SIZES = [(300, 200), (200, 300), (224, 224), (1000, 37), (150, 90), (224, 500)]


def _picture(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def _normalised(pixels: np.ndarray, mean, std) -> torch.Tensor:
    x = torch.from_numpy(pixels.copy()).permute(2, 0, 1).float() / 255
    return (x - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)


@pytest.mark.parametrize("resize_mode", ["shortest", "longest", "squash"])
@pytest.mark.parametrize("target", [(224, 224), (160, 256)])
@pytest.mark.parametrize("interpolation", ["bicubic", "bilinear"])
def test_geometry_gives_open_clips_input_tensor(resize_mode, target, interpolation):
    mean, std = open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD
    reference = open_clip.image_transform(
        target,
        is_train=False,
        mean=mean,
        std=std,
        resize_mode=resize_mode,
        interpolation=interpolation,
        fill_color=0,
    )
    geometry = Geometry(target, resize_mode, interpolation, 0)
    for i, (width, height) in enumerate(SIZES):
        picture = _picture(width, height, i)
        pixels = geometry.apply(picture)
        assert pixels.dtype == np.uint8 and pixels.shape == (*target, 3)
        expected = reference(picture)
        assert torch.allclose(_normalised(pixels, mean, std), expected, atol=1e-5), (width, height)


def test_unknown_resize_mode_is_refused():
    from dataclasses import replace

    from orchestration.backbone import identity
    from orchestration.settings import BackboneSettings

    tiny = identity(BackboneSettings(model="scoretag-tiny", pretrained=""))
    with pytest.raises(ValueError, match="unsupported open_clip resize_mode"):
        Geometry.of(replace(tiny, resize_mode="stretch"))


def test_draft_size_covers_the_target():
    assert Geometry((224, 224), draft=True).draft_size == (224, 224)
    assert Geometry((160, 256), "shortest", draft=True).draft_size == (256, 256)
    assert Geometry((160, 256), "squash", draft=True).draft_size == (256, 160)


def test_jpegs_are_decoded_whole_unless_asked():
    # A reduced DCT scale changes the pixels (see preprocess.py): the backbone's geometry
    # decodes whole, as open_clip's and Hugging Face's transforms do.
    assert Geometry((224, 224)).draft_size is None
    assert Geometry((384, 384), "squash").draft_size is None


def test_the_jpeg_draft_setting_reaches_the_decoder():
    from assets.embeddings.assets import plan_for
    from orchestration.backbone import identity
    from orchestration.resources import BackboneResource
    from orchestration.settings import BackboneSettings, EmbedSettings, Settings

    tiny = identity(BackboneSettings(model="scoretag-tiny", pretrained=""))
    assert Geometry.of(tiny).draft_size is None
    assert Geometry.of(tiny, draft=True).draft_size == (max(tiny.image_size),) * 2
    backbone = BackboneResource(model="scoretag-tiny", pretrained="")
    for draft in (False, True):
        settings = Settings(name="t", embed=EmbedSettings(jpeg_draft=draft))
        assert plan_for(settings, backbone).jpeg_draft is draft
