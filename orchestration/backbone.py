"""The open_clip image encoder a profile names: a registered config or a released model,
with weights from an open_clip pretrained tag, a local checkpoint, or a seeded random init.
A checkpoint beside a tag is a local copy of that tag's weights: the backbone has the tag's
identity (so heads made for those weights work offline), and the file's sha256 is kept as
provenance. The network is built with the options the weights were trained with (the
activation, preprocessing), as orchestration/weights.py works them out.

Our own architectures live in `model_configs/*.json` (open_clip's format) and are registered
with open_clip by file, the way open_clip registers its own.

A backbone's `Identity` (model, weights, activation, input geometry, normalisation, width) is
stored with every embedding shard: vectors of two identities are never mixed or scored
together. It is known without loading weights, so checks and readers stay cheap.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from orchestration import weights as weights_lib
from orchestration.devices import autocast_dtype, resolve_device
from orchestration.settings import BackboneSettings

MODEL_CONFIGS = Path(__file__).parent / "model_configs"
_PREPROCESS_KEYS = ("mean", "std", "interpolation", "resize_mode", "fill_color")
_SCHEMA = re.compile(r"^(hf-hub|local-dir):")


def register_model_configs() -> list[str]:
    """Make our architectures known to open_clip; returns their names."""
    _register()
    return sorted(p.stem for p in MODEL_CONFIGS.glob("*.json"))


@functools.cache
def _register() -> None:
    import open_clip

    open_clip.add_model_config(MODEL_CONFIGS)


@dataclass(frozen=True)
class Identity:
    """What makes two embeddings comparable. `id` names the folder their shards live in."""

    model: str
    weights: str  # an open_clip pretrained tag, "file:sha256:<hex>", or "random:seed=<n>"
    image_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str
    resize_mode: str
    fill_color: int
    embed_dim: int
    normalized: bool = True
    # "quick_gelu" when the network's MLPs use QuickGELU, "gelu_tanh" for GELU's tanh
    # approximation (SigLIP's weights); None for open_clip's default GELU. None is left out
    # of the JSON, so identities written before the field existed (all built with their
    # config's activation) keep their JSON and their id.
    activation: str | None = None

    @property
    def activation_name(self) -> str:
        return self.activation or weights_lib.GELU

    @property
    def id(self) -> str:
        digest = hashlib.sha256(self.to_json().encode()).hexdigest()[:10]
        weights = re.sub(r"[^A-Za-z0-9.-]+", "-", self.weights.split(":sha256:")[0]).strip("-")
        return f"{_slug(self.model)}__{weights}__{digest}"

    def to_json(self) -> str:
        fields = {k: v for k, v in asdict(self).items() if not (k == "activation" and v is None)}
        return json.dumps(fields, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Identity:
        raw = json.loads(text)
        return cls(
            **{
                **raw,
                "image_size": tuple(raw["image_size"]),
                "mean": tuple(raw["mean"]),
                "std": tuple(raw["std"]),
            }
        )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-")


@functools.lru_cache(maxsize=8)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def weights_id(settings: BackboneSettings) -> str:
    """The weights part of an identity: a tag (also for a local copy declared as that tag's,
    with `pretrained` beside `checkpoint`), an undeclared checkpoint by its content, not its
    path, or the seed of a random init."""
    if settings.checkpoint and settings.pretrained:
        checkpoint_path(settings)  # a declared copy must still exist
        return settings.pretrained
    if settings.checkpoint:
        path = Path(settings.checkpoint).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"backbone checkpoint not found: {settings.checkpoint}")
        stat = path.stat()
        return f"file:sha256:{_file_sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)}"
    if settings.pretrained:
        return settings.pretrained
    return f"random:seed={settings.seed}"


def checkpoint_path(settings: BackboneSettings) -> Path | None:
    """The local checkpoint file, None without one; FileNotFoundError when it is absent."""
    if not settings.checkpoint:
        return None
    path = Path(settings.checkpoint).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"backbone checkpoint not found: {settings.checkpoint}")
    return path


def provenance(settings: BackboneSettings) -> dict[str, str] | None:
    """Where a declared local copy's weights came from (its path and sha256): kept beside the
    identity, not in it, so that any copy of the same weights makes the same backbone."""
    path = checkpoint_path(settings)
    if path is None or not settings.pretrained:
        return None
    return {
        "pretrained": settings.pretrained,
        "checkpoint": str(path.resolve()),
        "sha256": weights_lib.file_sha256(path),
    }


def _tag_config(settings: BackboneSettings) -> dict:
    """open_clip's pretrained config of the declared tag ({} without one, and for hf-hub: and
    local-dir: models, whose weights come with their config and which open_clip builds as
    that config says)."""
    if not settings.pretrained or _SCHEMA.match(settings.model):
        return {}
    return weights_lib.tag_config(settings.model, settings.pretrained)


def _quick_gelu(settings: BackboneSettings, config: dict) -> bool:
    return weights_lib.needs_quick_gelu(
        settings.model, config, settings.pretrained, _tag_config(settings)
    )


def _activation(settings: BackboneSettings, config: dict) -> str:
    """The activation the weights need: QuickGELU (OpenAI's), GELU's tanh approximation
    (timm's SigLIP towers, whose weights big_vision trained with it), or GELU."""
    if _quick_gelu(settings, config):
        return weights_lib.QUICK_GELU
    if weights_lib.needs_gelu_tanh(config):
        return weights_lib.GELU_TANH
    return weights_lib.GELU


def _pair(size: Any) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _identity(
    settings: BackboneSettings,
    preprocess: dict,
    image_size: Any,
    dim: int,
    activation: str,
) -> Identity:
    return Identity(
        model=settings.model,
        weights=weights_id(settings),
        image_size=_pair(image_size),
        mean=tuple(float(v) for v in preprocess["mean"]),
        std=tuple(float(v) for v in preprocess["std"]),
        interpolation=str(preprocess["interpolation"]),
        resize_mode=str(preprocess["resize_mode"]),
        fill_color=int(preprocess["fill_color"]),
        embed_dim=int(dim),
        activation=None if activation == weights_lib.GELU else activation,
    )


def identity(settings: BackboneSettings) -> Identity:
    """The identity `create_backbone(settings)` will have, read from the model's config and
    the pretrained tag's config (as open_clip merges them), without building the model."""
    import open_clip
    from open_clip.transform import PreprocessCfg, merge_preprocess_dict

    register_model_configs()
    config = open_clip.get_model_config(settings.model)
    if config is None:
        # hf-hub: and local-dir: models keep their config elsewhere: ask the model itself.
        return loaded_identity(settings, create_backbone(settings)[0])
    preprocess = merge_preprocess_dict(PreprocessCfg(), config.get("preprocess_cfg", {}))
    # The tag's options apply to a declared local copy as much as to a download.
    preprocess = merge_preprocess_dict(preprocess, _tag_config(settings))
    return _identity(
        settings,
        preprocess,
        config["vision_cfg"]["image_size"],
        config["embed_dim"],
        _activation(settings, config),
    )


def loaded_identity(settings: BackboneSettings, model: Any) -> Identity:
    """The identity of a built model, from what open_clip attached to it and the activation
    its transformer blocks really have."""
    preprocess = model.visual.preprocess_cfg
    built = weights_lib.built_activation(model)
    if built == "mixed":
        raise RuntimeError(f"backbone {settings.model}: its blocks mix GELU and QuickGELU")
    if built is None:  # no transformer blocks we know (HF towers): as configured
        built = weights_lib.activation_name(_quick_gelu(settings, {}))
    return _identity(settings, preprocess, preprocess["size"], _output_dim(model.visual), built)


def _output_dim(visual: Any) -> int:
    """The width of an image tower's embeddings. open_clip's own towers say (`output_dim`);
    a timm tower (SigLIP's) does not: its last projection's, or else its trunk's width."""
    import torch

    dim = getattr(visual, "output_dim", None)
    if dim is not None:
        return int(dim)
    head = getattr(visual, "head", None)
    linears = [m for m in head.modules() if isinstance(m, torch.nn.Linear)] if head else []
    if linears:
        return int(linears[-1].out_features)
    return int(visual.trunk.num_features)


def create_backbone(settings: BackboneSettings, device: str = "cpu") -> tuple[Any, Any]:
    """The model in eval mode and its preprocessing transform.

    Weights come from a local checkpoint (a copy of the tag's weights when `pretrained` is
    set beside it), else from the pretrained tag (the Hugging Face cache, or a download),
    else are drawn from `settings.seed`, so an untrained backbone is the same on every
    machine. The network has the activation and preprocessing the weights were trained with,
    and is checked to have that activation once built.
    """
    import open_clip
    import torch

    register_model_configs()
    checkpoint = checkpoint_path(settings)
    config = open_clip.get_model_config(settings.model)
    tag_cfg = _tag_config(settings)
    activation = _activation(settings, config or {})
    options: dict[str, Any] = {}
    if checkpoint is not None:
        weights_lib.check_checkpoint(checkpoint, settings.model)
        # open_clip reads a file's weights without its tag's options: pass them.
        options = {
            f"image_{key}": tag_cfg[key]
            for key in ("mean", "std", "interpolation", "resize_mode")
            if key in tag_cfg
        }
    elif settings.pretrained and config is not None:
        weights_lib.require_reachable(settings.model, settings.pretrained, tag_cfg)
    torch.manual_seed(settings.seed)
    weights = str(checkpoint) if checkpoint else settings.pretrained or None
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            settings.model,
            pretrained=weights,
            device=device,
            weights_only=True,
            force_quick_gelu=activation == weights_lib.QUICK_GELU,
            **options,
        )
    except RuntimeError as e:
        if checkpoint is None and settings.pretrained and "Failed to download" in str(e):
            raise RuntimeError(
                f"could not fetch the {settings.model} {settings.pretrained!r} weights ({e}). "
                f"Without network, fill the Hugging Face cache once with "
                f"{weights_lib.download_hint(tag_cfg)} and set HF_HUB_OFFLINE=1, or set "
                f"[backbone] checkpoint to a local copy beside pretrained"
            ) from e
        raise
    if activation == weights_lib.GELU_TANH:
        # open_clip has no option for it: timm's SigLIP blocks are given it once built.
        weights_lib.use_gelu_tanh(model)
    built = weights_lib.built_activation(model)
    if config is not None and built not in (None, activation):
        raise RuntimeError(
            f"backbone {settings.model}: built with {built}, but its weights need {activation}"
        )
    return model.eval(), preprocess


@dataclass(frozen=True)
class Backbone:
    """A model ready to embed: on its device, with the precision it runs at."""

    model: Any
    identity: Identity
    device: str
    autocast: Any  # torch dtype or None
    # A declared local copy's path and sha256 (see `provenance`), written beside the identity.
    provenance: dict[str, str] | None = None

    @property
    def precision(self) -> str:
        return "fp32" if self.autocast is None else str(self.autocast).removeprefix("torch.")


def load_backbone(settings: BackboneSettings) -> Backbone:
    """Build the model on the resolved device; its identity must be the one predicted
    without loading it, or embeddings would be filed under the wrong backbone."""
    import open_clip

    device = resolve_device(settings.device)
    model, _ = create_backbone(settings, device=device)
    actual = loaded_identity(settings, model)
    # hf-hub: and local-dir: models keep their config elsewhere: nothing predicts their
    # identity but the model itself (identity() would build it a second time to ask).
    predicted = open_clip.get_model_config(settings.model) is not None
    expected = identity(settings) if predicted else actual
    if actual != expected:
        raise RuntimeError(
            f"backbone {settings.model}: the loaded model's identity {actual} differs from "
            f"the one its configuration predicts {expected}"
        )
    return Backbone(
        model,
        actual,
        device,
        autocast_dtype(settings.precision, device),
        provenance(settings),
    )
