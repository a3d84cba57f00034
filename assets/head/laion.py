"""LAION's improved aesthetic predictor as a scoretag head: the LAION names of
assets/head/published.py, which imports every published head (LAION's two layouts and
Aesthetic Predictor V2.5) with one loader and one card.

github.com/christophschuhmann/improved-aesthetic-predictor ships its heads as state dicts of
an `nn.Sequential` named `layers`, in two layouts ("linearMSE", "reluMSE"), reading OpenAI
CLIP ViT-L/14 embeddings and rating on roughly the 1-10 scale, mapped onto [0, 1] by
(s - 1) / 9.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from assets.head.network import HeadNet
from assets.head.published import LAYOUTS as _ALL
from assets.head.published import SCALE, SHIFT, published_card, read_published, sha256_of
from assets.head.published import detect_layout as _detect
from assets.head.published import to_headnet as _to_headnet

__all__ = ["LAYOUTS", "SCALE", "SHIFT", "SPACE", "detect_layout", "import_laion", "laion_card"]
__all__ += ["read_laion", "sha256_of", "to_headnet"]

# Each layout: the Sequential indices of its Linear layers, and the activation after each.
LAYOUTS: dict[str, tuple[tuple[int, ...], tuple[str, ...]]] = {
    name.removeprefix("laion-"): (layout.indices, layout.activations)
    for name, layout in _ALL.items()
    if layout.family == "laion"
}
SPACE = _ALL["laion-linearMSE"].space
LICENSE = _ALL["laion-linearMSE"].license


def import_laion(path: Path) -> HeadNet:
    """The head of a LAION improved-aesthetic-predictor checkpoint (either layout), scoring
    in [0, 1]; ValueError when the file is not one."""
    return read_laion(path)[0]


def read_laion(path: Path) -> tuple[HeadNet, str]:
    """The head of a LAION checkpoint and the layout it was found in ("linearMSE" or
    "reluMSE")."""
    net, layout = read_published(path, "laion")
    return net, layout.name.removeprefix("laion-")


def detect_layout(state: dict[str, torch.Tensor]) -> str:
    """Which LAION layout a state dict's keys are; ValueError naming both when neither."""
    return _detect(state, "laion").name.removeprefix("laion-")


def to_headnet(state: dict[str, torch.Tensor], layout: str) -> HeadNet:
    return _to_headnet(state, _ALL[f"laion-{layout}"])


def laion_card(net: HeadNet, layout: str, source_path: Path) -> dict[str, Any]:
    """The card of an imported LAION head (see `published.published_card`)."""
    return published_card(net, _ALL[f"laion-{layout}"], source_path)
