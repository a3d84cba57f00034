"""Published aesthetic heads imported as scoretag heads: LAION's improved aesthetic predictor
(two layouts) and discus0434's Aesthetic Predictor V2.5.

Each ships its head as a PyTorch state dict of an `nn.Sequential` of Linear layers, with
Dropout (and for one layout ReLU) modules between them that hold no weights:

    laion linearMSE  layers.0/2/4/6/7        Linear, Dropout, Linear, Dropout, Linear,
                                             Dropout, Linear, Linear
    laion reluMSE    layers.0/3/6/9/11       the same Linear layers, each of the first four
                                             followed by a ReLU (the first three by a Dropout
                                             as well)
    v25              scoring_head.0/2/4/6/8  Linear, Dropout, Linear, Dropout, Linear,
                                             Dropout, Linear, Dropout, Linear

The gaps in the indices are the weightless modules, so the key set alone tells the layouts
apart. Each reads a L2-normalised image embedding of the space it was trained in and gives a
rating on roughly the 1-10 scale, mapped here onto [0, 1] by (s - 1) / 9:

- LAION: OpenAI CLIP ViT-L/14 (QuickGELU), open_clip's `ViT-L-14` + `openai`;
- V2.5: SigLIP so400m-patch14-384's pooled output (the attention-pooling head's, divided by
  its L2 norm in V2.5's own forward), open_clip's `ViT-SO400M-14-SigLIP-384` + `webli`.

Checkpoints are read with `torch.load(..., weights_only=True)` only: a .pth file is a pickle,
and a full pickle can run any code it likes while it loads.
"""

from __future__ import annotations

import hashlib
import pickle
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from assets.head.artifact import build_card
from assets.head.network import Architecture, HeadNet
from orchestration.backbone import identity
from orchestration.settings import BackboneSettings

# The 1-10 rating onto [0, 1]: (s - 1) / 9; HeadNet.score clips what falls outside.
SCALE = 1.0 / 9.0
SHIFT = -1.0 / 9.0
SCALE_NOTE = {"source": [1, 10], "to_unit": "(s - 1) / 9, clipped to [0, 1]"}
# Prefixes that wrappers add to every key: DataParallel/DDP ("module.") and training wrappers
# that hold the MLP as an attribute ("model.").
_WRAPPER_PREFIX = re.compile(r"^(?:module\.|model\.)+")
SHOWN_KEYS = 12  # keys quoted in an error before "..."


@dataclass(frozen=True)
class Layout:
    """One published head's state-dict layout and what its scores mean."""

    family: str  # "laion" or "v25": the name in the cross-validation table
    name: str  # the layout's name, as `head_type` on the card
    prefix: str  # the Sequential's name in the keys
    indices: tuple[int, ...]  # the Sequential indices of its Linear layers
    activations: tuple[str, ...]  # the activation after each
    model: str  # the open_clip model and tag of the space it was trained in
    pretrained: str
    space: str
    license: str

    def key_set(self) -> set[str]:
        return {f"{self.prefix}.{i}.{part}" for i in self.indices for part in ("weight", "bias")}

    def describe(self) -> str:
        return f"{self.name}: {self.prefix}.{'/'.join(map(str, self.indices))} .weight/.bias"


_LAION = {
    "model": "ViT-L-14",
    "pretrained": "openai",
    "space": "OpenAI CLIP ViT-L/14 (QuickGELU)",
    "license": "Apache-2.0 (LAION improved-aesthetic-predictor)",
}
LAYOUTS: dict[str, Layout] = {
    "laion-linearMSE": Layout(
        "laion", "laion-linearMSE", "layers", (0, 2, 4, 6, 7), ("none",) * 5, **_LAION
    ),
    "laion-reluMSE": Layout(
        "laion", "laion-reluMSE", "layers", (0, 3, 6, 9, 11), ("relu",) * 4 + ("none",), **_LAION
    ),
    "v25": Layout(
        "v25",
        "v25",
        "scoring_head",
        (0, 2, 4, 6, 8),
        ("none",) * 5,
        model="ViT-SO400M-14-SigLIP-384",
        pretrained="webli",
        space="SigLIP so400m-patch14-384 (WebLI), pooled output",
        # The code is AGPL-3.0, and so are the weights its repository ships: scoretag never
        # ships them, the user imports a file they fetched.
        license="AGPL-3.0 (discus0434/aesthetic-predictor-v2-5)",
    ),
}
FAMILIES = tuple(dict.fromkeys(layout.family for layout in LAYOUTS.values()))  # laion, v25


def family_of(head_type: str) -> str | None:
    """The family ("laion", "v25") of an imported head's `head_type`; None for a trained one."""
    layout = LAYOUTS.get(head_type)
    return layout.family if layout is not None else None


def read_published(path: Path, family: str) -> tuple[HeadNet, Layout]:
    """The head of a published checkpoint of `family` and the layout it was found in;
    ValueError naming the file and what was expected when it is not one."""
    state = _plain_state_dict(_load(Path(path)), path)
    try:
        layout = detect_layout(state, family)
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


def detect_layout(state: dict[str, torch.Tensor], family: str) -> Layout:
    """Which of `family`'s layouts a state dict's keys are; ValueError naming them when none.
    V2.5's head saved from its whole model (`model.layers.state_dict()` is the released
    file; `model.state_dict()` holds it under `layers.`) is found either way."""
    layouts = [layout for layout in LAYOUTS.values() if layout.family == family]
    for layout in layouts:
        if _own_tensors(state, layout) is not None:
            return layout
    found = sorted(state, key=_natural)
    listed = ", ".join(found[:SHOWN_KEYS]) + (", ..." if len(found) > SHOWN_KEYS else "")
    what = {
        "laion": "a LAION aesthetic predictor checkpoint",
        "v25": "an Aesthetic Predictor V2.5 head",
    }[family]
    expected = "; ".join(layout.describe() for layout in layouts)
    many = "one of the two layouts" if len(layouts) > 1 else "the layout"
    raise ValueError(f"not {what}: found keys [{listed or 'none'}], expected {many} ({expected})")


def _natural(key: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", key)]


def _own_tensors(state: dict[str, torch.Tensor], layout: Layout) -> dict | None:
    """The layout's tensors in `state` by the layout's keys: the state dict itself when its
    keys are exactly those, or, for V2.5's head saved from its whole model
    (`model.state_dict()`), the ones under `layers.`; None when they are not there."""
    keys = layout.key_set()
    if set(state) == keys:
        return state
    if layout.family == "v25" and {f"layers.{k}" for k in keys} <= set(state):
        return {k: state[f"layers.{k}"] for k in keys}
    return None


def to_headnet(state: dict[str, torch.Tensor], layout: Layout | str) -> HeadNet:
    """A HeadNet holding the weights of a state dict in `layout`, its dims read from the
    weight shapes (so a head trained on another embedding width imports too)."""
    layout = LAYOUTS[layout] if isinstance(layout, str) else layout
    state = _own_tensors(state, layout) or state  # else the missing key is named below
    names = [f"{layout.prefix}.{i}" for i in layout.indices]
    weights = [state[f"{name}.weight"] for name in names]
    biases = [state[f"{name}.bias"] for name in names]
    dims = [int(weights[0].shape[1])] if weights[0].ndim == 2 else []
    for name, w, b in zip(names, weights, biases, strict=True):
        # Each layer must take what the one before gives: a mismatched file is refused here
        # rather than by load_state_dict with a message about an internal key name.
        if w.ndim != 2 or w.shape[1] != dims[-1] or b.shape != (w.shape[0],):
            raise ValueError(
                f"{name}: weight {tuple(w.shape)} and bias {tuple(b.shape)} do not follow "
                f"a layer with {dims[-1] if dims else '?'} outputs"
            )
        dims.append(int(w.shape[0]))
    if dims[-1] != 1:
        raise ValueError(f"the last layer gives {dims[-1]} outputs, a {layout.family} head gives 1")
    # Dropout only acts in training, and an imported head is never trained: none is kept.
    # bfloat16 (V2.5's released file) and float16 widen to float32 exactly.
    net = HeadNet(Architecture(tuple(dims), layout.activations, scale=SCALE, shift=SHIFT))
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


def published_card(net: HeadNet, layout: Layout, source_path: Path) -> dict[str, Any]:
    """The card of an imported head: the space it was trained in (as a backbone identity,
    whether a backbone gets those weights by tag, from a declared local copy or from the
    Hugging Face cache), its 1-10 scale and how it maps to [0, 1], no labels of ours, no
    metrics yet, the source file by name and hash, and the weights' licence."""
    backbone = identity(BackboneSettings(model=layout.model, pretrained=layout.pretrained))
    source_path = Path(source_path)
    return build_card(
        net,
        head_type=layout.name,
        space=layout.space,
        backbone=asdict(backbone),
        scale=SCALE_NOTE,
        labels=None,
        metrics={},
        source={"file": source_path.name, "sha256": sha256_of(source_path)},
        license=layout.license,
    )
