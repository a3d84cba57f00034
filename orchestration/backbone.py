"""The open_clip image encoder a profile names: a registered config or a released model,
with weights from an open_clip pretrained tag, a local checkpoint, or a seeded random init.

Our own architectures live in `model_configs/*.json` (open_clip's format) and are registered
with open_clip by file, the way open_clip registers its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestration.settings import BackboneSettings

MODEL_CONFIGS = Path(__file__).parent / "model_configs"


def register_model_configs() -> list[str]:
    """Make our architectures known to open_clip; returns their names."""
    import open_clip

    open_clip.add_model_config(MODEL_CONFIGS)
    return sorted(p.stem for p in MODEL_CONFIGS.glob("*.json"))


def create_backbone(settings: BackboneSettings, device: str = "cpu") -> tuple[Any, Any]:
    """The model in eval mode and its preprocessing transform.

    A local checkpoint wins over a pretrained tag; with neither, weights are drawn from
    `settings.seed`, so an untrained backbone is still the same one on every machine.
    """
    import open_clip
    import torch

    register_model_configs()
    checkpoint = settings.checkpoint or None
    if checkpoint and not Path(checkpoint).is_file():
        raise FileNotFoundError(f"backbone checkpoint not found: {checkpoint}")
    torch.manual_seed(settings.seed)
    model, _, preprocess = open_clip.create_model_and_transforms(
        settings.model,
        pretrained=checkpoint or settings.pretrained or None,
        device=device,
        weights_only=True,
    )
    return model.eval(), preprocess
