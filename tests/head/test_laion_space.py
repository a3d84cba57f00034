"""An imported LAION head follows the embedding space it was trained in, OpenAI CLIP
ViT-L/14 with QuickGELU, not one spelling of a backbone."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch

from assets.head.artifact import BackboneMismatch, Head, require_backbone
from assets.head.laion import SPACE, laion_card, to_headnet
from orchestration.backbone import identity
from orchestration.settings import BackboneSettings

OPENAI = identity(BackboneSettings(model="ViT-L-14", pretrained="openai"))


@pytest.fixture
def laion(tmp_path: Path) -> Head:
    state = {}
    dims = [768, 1024, 128, 64, 16, 1]
    for i, (a, b) in zip((0, 2, 4, 6, 7), zip(dims, dims[1:], strict=False), strict=True):
        state[f"layers.{i}.weight"] = torch.randn(b, a)
        state[f"layers.{i}.bias"] = torch.randn(b)
    source = tmp_path / "laion.pth"
    torch.save(state, source)
    net = to_headnet(state, "linearMSE")
    return Head(net, {**laion_card(net, "linearMSE", source), "version": "laion0"})


def test_the_card_names_openai_clip_with_quick_gelu(laion: Head):
    assert laion.card["space"] == SPACE == "OpenAI CLIP ViT-L/14 (QuickGELU)"
    assert laion.card["backbone"]["activation"] == "quick_gelu"
    assert laion.card["backbone"] == asdict(OPENAI)


def test_it_activates_on_every_spelling_of_that_space(tmp_path: Path, laion: Head):
    checkpoint = tmp_path / "copy.safetensors"
    checkpoint.write_bytes(b"a declared copy is known by its tag, not its bytes")
    for settings in (
        BackboneSettings(model="ViT-L-14", pretrained="openai"),
        BackboneSettings(model="ViT-L-14", pretrained="openai", checkpoint=str(checkpoint)),
        BackboneSettings(model="ViT-L-14-quickgelu", pretrained="openai"),
    ):
        require_backbone(laion, asdict(identity(settings)))


def test_it_refuses_other_spaces_naming_both(tmp_path: Path, laion: Head):
    gelu = replace(OPENAI, activation=None)  # a store embedded before the activation was built
    with pytest.raises(BackboneMismatch) as raised:
        require_backbone(laion, asdict(gelu))
    assert "ViT-L-14 / openai with QuickGELU embeddings" in str(raised.value)
    assert "ViT-L-14 / openai with GELU's" in str(raised.value)
    laion2b = identity(BackboneSettings(model="ViT-L-14", pretrained="laion2b_s32b_b82k"))
    with pytest.raises(BackboneMismatch, match="ViT-L-14 / laion2b_s32b_b82k's"):
        require_backbone(laion, asdict(laion2b))
    checkpoint = tmp_path / "other.safetensors"
    checkpoint.write_bytes(b"undeclared")
    settings = BackboneSettings(model="ViT-L-14", pretrained="", checkpoint=str(checkpoint))
    undeclared = identity(settings)
    with pytest.raises(BackboneMismatch):
        require_backbone(laion, asdict(undeclared))


def test_a_laion_card_from_before_the_activation_was_recorded_is_that_space(laion: Head):
    old = {**laion.card, "backbone": {k: v for k, v in asdict(OPENAI).items() if k != "activation"}}
    require_backbone(Head(laion.net, old), asdict(OPENAI))
    with pytest.raises(BackboneMismatch):
        require_backbone(Head(laion.net, old), asdict(replace(OPENAI, activation=None)))
    # a trained head's card is taken as it says: no activation means GELU
    trained = {**old, "head_type": "mlp"}
    with pytest.raises(BackboneMismatch):
        require_backbone(Head(laion.net, trained), asdict(OPENAI))
