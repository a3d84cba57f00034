"""LAION's improved aesthetic predictor as a scoretag head.

github.com/christophschuhmann/improved-aesthetic-predictor ships its heads as PyTorch state
dicts of an `nn.Sequential` named `layers`, in two layouts:

    linearMSE  layers.0/2/4/6/7  Linear, Dropout, Linear, Dropout, Linear, Dropout, Linear, Linear
    reluMSE    layers.0/3/6/9/11 the same Linear layers, each of the first four followed by a
                                 ReLU (and the first three by a Dropout as well)

The gaps in the indices are the Dropout and ReLU modules, which hold no weights, so the key
set alone tells the two apart. Both read a L2-normalised OpenAI CLIP ViT-L/14 embedding and
give a rating on roughly the 1-10 scale, mapped here onto [0, 1] by (s - 1) / 9.

Checkpoints are read with `torch.load(..., weights_only=True)` only: a .pth file is a pickle,
and a full pickle can run any code it likes while it loads.
"""

from __future__ import annotations

import hashlib
import pickle
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from assets.head.artifact import build_card
from assets.head.network import Architecture, HeadNet
from orchestration.backbone import identity
from orchestration.settings import BackboneSettings

# Each layout: the Sequential indices of its Linear layers, and the activation after each.
LAYOUTS: dict[str, tuple[tuple[int, ...], tuple[str, ...]]] = {
    "linearMSE": ((0, 2, 4, 6, 7), ("none", "none", "none", "none", "none")),
    "reluMSE": ((0, 3, 6, 9, 11), ("relu", "relu", "relu", "relu", "none")),
}
# The 1-10 rating onto [0, 1]: (s - 1) / 9; HeadNet.score clips what falls outside.
SCALE = 1.0 / 9.0
SHIFT = -1.0 / 9.0
# Prefixes that wrappers add to every key: DataParallel/DDP ("module.") and training wrappers
# that hold the MLP as an attribute ("model.").
_WRAPPER_PREFIX = re.compile(r"^(?:module\.|model\.)+")
LICENSE = "Apache-2.0 (LAION improved-aesthetic-predictor)"
SPACE = "OpenAI CLIP ViT-L/14 (QuickGELU)"
SHOWN_KEYS = 12  # keys quoted in an error before "..."


def import_laion(path: Path) -> HeadNet:
    """The head of a LAION improved-aesthetic-predictor checkpoint (either layout), scoring
    in [0, 1]; ValueError when the file is not one."""
    return read_laion(path)[0]


def read_laion(path: Path) -> tuple[HeadNet, str]:
    """The head of a LAION checkpoint and the layout it was found in ("linearMSE" or
    "reluMSE")."""
    state = _plain_state_dict(_load(Path(path)), path)
    try:
        layout = detect_layout(state)
        return to_headnet(state, layout), layout
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def _load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # weights_only refuses anything but tensors and plain containers: a whole pickled
        # module, or something worse. Of torch's long advice (which includes loading the file
        # unsafely), only the line naming what was refused is quoted.
        reason = next(
            (
                line.strip().split(" Please ")[0]
                for line in str(e).splitlines()
                if "WeightsUnpickler" in line
            ),
            str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__,
        )
        raise ValueError(
            f"{path}: not a plain state dict, refused by torch.load(weights_only=True); "
            f"save the model's state_dict(), not the model ({reason})"
        ) from e
    except (EOFError, KeyError, RuntimeError, ValueError) as e:
        # What torch.load raises on an empty, truncated or foreign file varies by case.
        raise ValueError(
            f"{path}: not a PyTorch checkpoint (torch.load: {type(e).__name__} {e})"
        ) from e


def _plain_state_dict(loaded: Any, path: Path) -> dict[str, torch.Tensor]:
    """Tensors by key, the wrapper prefixes stripped; a {"state_dict": ...} wrapper opened."""
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: expected a state dict, found a {type(loaded).__name__}")
    state = {}
    for key, value in loaded.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise ValueError(f"{path}: {key!r} is not a tensor: this is not a state dict")
        state[_WRAPPER_PREFIX.sub("", key)] = value
    return state


def _expected_keys(indices: tuple[int, ...]) -> set[str]:
    return {f"layers.{i}.{part}" for i in indices for part in ("weight", "bias")}


def detect_layout(state: dict[str, torch.Tensor]) -> str:
    """Which LAION layout a state dict's keys are; ValueError naming both when neither."""
    for name, (indices, _) in LAYOUTS.items():
        if set(state) == _expected_keys(indices):
            return name
    found = sorted(state, key=_natural)
    listed = ", ".join(found[:SHOWN_KEYS]) + (", ..." if len(found) > SHOWN_KEYS else "")
    expected = "; ".join(
        f"{name}: layers.{'/'.join(map(str, indices))} .weight/.bias"
        for name, (indices, _) in LAYOUTS.items()
    )
    raise ValueError(
        f"not a LAION aesthetic predictor checkpoint: found keys [{listed or 'none'}], "
        f"expected one of the two layouts ({expected})"
    )


def _natural(key: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", key)]


def to_headnet(state: dict[str, torch.Tensor], layout: str) -> HeadNet:
    """A HeadNet holding the weights of a state dict in `layout`, its dims read from the
    weight shapes (so a head trained on another embedding width imports too)."""
    indices, activations = LAYOUTS[layout]
    weights = [state[f"layers.{i}.weight"] for i in indices]
    biases = [state[f"layers.{i}.bias"] for i in indices]
    dims = [int(weights[0].shape[1])] if weights[0].ndim == 2 else []
    for i, (w, b) in zip(indices, zip(weights, biases, strict=True), strict=True):
        # Each layer must take what the one before gives: a mismatched file is refused here
        # rather than by load_state_dict with a message about an internal key name.
        if w.ndim != 2 or w.shape[1] != dims[-1] or b.shape != (w.shape[0],):
            raise ValueError(
                f"layers.{i}: weight {tuple(w.shape)} and bias {tuple(b.shape)} do not follow "
                f"a layer with {dims[-1] if dims else '?'} outputs"
            )
        dims.append(int(w.shape[0]))
    if dims[-1] != 1:
        raise ValueError(f"the last layer gives {dims[-1]} outputs, a LAION head gives 1")
    # Dropout only acts in training, and an imported head is never trained: none is kept.
    net = HeadNet(Architecture(tuple(dims), activations, scale=SCALE, shift=SHIFT))
    net.load_state_dict(
        {
            f"linears.{n}.{part}": t.detach().to(torch.float32).contiguous()
            for n, (w, b) in enumerate(zip(weights, biases, strict=True))
            for part, t in (("weight", w), ("bias", b))
        }
    )
    return net.eval()


def sha256_of(path: Path) -> str:
    with Path(path).open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def laion_card(net: HeadNet, layout: str, source_path: Path) -> dict[str, Any]:
    """The card of an imported LAION head: OpenAI CLIP ViT-L/14 embeddings in (what LAION
    trained it on: OpenAI's weights in their own network, QuickGELU), no labels of ours, no
    metrics yet, the source file by name and hash. The backbone identity is that space's,
    whether a backbone gets the weights by tag, from a declared local copy or from the Hugging
    Face cache."""
    backbone = identity(BackboneSettings(model="ViT-L-14", pretrained="openai"))
    source_path = Path(source_path)
    return build_card(
        net,
        head_type=f"laion-{layout}",
        space=SPACE,
        backbone=asdict(backbone),
        labels=None,
        metrics={},
        source={"file": source_path.name, "sha256": sha256_of(source_path)},
        license=LICENSE,
    )
