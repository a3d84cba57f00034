"""A backbone's identity: known before loading, stable, and tied to the exact weights."""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from orchestration.backbone import Identity, identity, load_backbone, resolve_device
from orchestration.resources import BackboneResource
from orchestration.settings import BackboneSettings, load_settings

TINY = BackboneSettings(model="scoretag-tiny", pretrained="", device="cpu", seed=0)


def test_the_demo_backbone_id_does_not_drift():
    # Store folders are named by this id: a change would orphan every user's embeddings.
    assert identity(load_settings("demo").backbone).id == "scoretag-tiny__random-seed-0__3d24a6e2d2"


def test_identity_predicted_without_loading_is_the_loaded_ones():
    backbone = load_backbone(TINY)
    assert backbone.identity == identity(TINY)
    assert backbone.identity.embed_dim == 64 and backbone.identity.image_size == (224, 224)
    assert backbone.precision == "fp32"  # fp16 on a CPU falls back to fp32


def test_released_architectures_are_known_without_weights():
    vit_l = identity(BackboneSettings(model="ViT-L-14", pretrained="openai"))
    assert (vit_l.embed_dim, vit_l.image_size, vit_l.weights) == (768, (224, 224), "openai")
    assert vit_l.mean == pytest.approx((0.48145466, 0.4578275, 0.40821073))
    assert identity(BackboneSettings(model="ViT-L-14", pretrained="laion2b_s32b_b82k")) != vit_l
    with pytest.raises(ValueError, match="no pretrained weights 'nonsense'"):
        identity(BackboneSettings(model="ViT-L-14", pretrained="nonsense"))


def test_identity_roundtrips_through_json():
    tiny = identity(TINY)
    assert Identity.from_json(tiny.to_json()) == tiny
    assert replace(tiny, embed_dim=65).id != tiny.id


def test_checkpoint_loads_through_the_resource_and_names_its_file(tmp_path: Path):
    source = load_backbone(replace_seed(7)).model
    path = tmp_path / "tiny.pt"
    torch.save(source.state_dict(), path)
    resource = BackboneResource(model="scoretag-tiny", checkpoint=str(path), device="cpu")
    loaded = resource.load()
    for mine, theirs in zip(
        loaded.model.state_dict().values(), source.state_dict().values(), strict=True
    ):
        assert torch.equal(mine, theirs)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    first = resource.identity()
    assert first.weights == f"file:sha256:{digest}"
    assert first.id.startswith("scoretag-tiny__file__")
    image = torch.rand(2, 3, 224, 224)
    with torch.inference_mode():
        assert torch.equal(loaded.model.encode_image(image), source.encode_image(image))
    # other weights under the same file name are another backbone (the file's hash is
    # cached by path, size and mtime: make sure the rewrite does not share the old mtime)
    before = path.stat().st_mtime_ns
    torch.save(load_backbone(replace_seed(8)).model.state_dict(), path)
    os.utime(path, ns=(before + 10**9, before + 10**9))
    assert resource.identity() != first


def replace_seed(seed: int) -> BackboneSettings:
    return TINY.model_copy(update={"seed": seed})


def test_an_absent_accelerator_is_an_error_not_a_fallback():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cuda", "mps", "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            resolve_device("cuda")
