from pathlib import Path

import pytest
import torch
from PIL import Image

from orchestration.backbone import create_backbone, register_model_configs
from orchestration.settings import BackboneSettings, load_settings

TINY = BackboneSettings(model="scoretag-tiny", pretrained="", seed=0)


def _weights(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.visual.parameters()])


def test_demo_profile_backbone_is_the_registered_tiny_model():
    assert "scoretag-tiny" in register_model_configs()
    settings = load_settings("demo").backbone
    model, preprocess = create_backbone(settings)
    image = preprocess(Image.new("RGB", (300, 200)))
    with torch.inference_mode():
        features = model.encode_image(image.unsqueeze(0))
    assert features.shape == (1, 64)


def test_untrained_backbone_is_the_same_for_the_same_seed():
    first, _ = create_backbone(TINY)
    again, _ = create_backbone(TINY)
    other, _ = create_backbone(TINY.model_copy(update={"seed": 1}))
    assert torch.equal(_weights(first), _weights(again))
    assert not torch.equal(_weights(first), _weights(other))


def test_local_checkpoint_loads_instead_of_random_weights(tmp_path: Path):
    source, _ = create_backbone(TINY.model_copy(update={"seed": 7}))
    path = tmp_path / "tiny.pt"
    torch.save(source.state_dict(), path)
    loaded, _ = create_backbone(TINY.model_copy(update={"checkpoint": str(path)}))
    assert torch.equal(_weights(loaded), _weights(source))


def test_missing_checkpoint_is_named(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="backbone checkpoint not found"):
        create_backbone(TINY.model_copy(update={"checkpoint": str(tmp_path / "none.pt")}))
