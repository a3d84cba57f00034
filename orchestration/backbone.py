"""The open_clip image encoder a profile names: a registered config or a released model,
with weights from an open_clip pretrained tag, a local checkpoint, or a seeded random init.

Our own architectures live in `model_configs/*.json` (open_clip's format) and are registered
with open_clip by file, the way open_clip registers its own.

A backbone's `Identity` (model, weights, input geometry, normalisation, embedding width) is
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

from orchestration.devices import autocast_dtype, resolve_device
from orchestration.settings import BackboneSettings

MODEL_CONFIGS = Path(__file__).parent / "model_configs"
_PREPROCESS_KEYS = ("mean", "std", "interpolation", "resize_mode", "fill_color")


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

    @property
    def id(self) -> str:
        digest = hashlib.sha256(self.to_json().encode()).hexdigest()[:10]
        weights = re.sub(r"[^A-Za-z0-9.-]+", "-", self.weights.split(":sha256:")[0]).strip("-")
        return f"{_slug(self.model)}__{weights}__{digest}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

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
    """The weights part of an identity: a checkpoint by its content, not its path."""
    if settings.checkpoint:
        path = Path(settings.checkpoint).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"backbone checkpoint not found: {settings.checkpoint}")
        stat = path.stat()
        return f"file:sha256:{_file_sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)}"
    if settings.pretrained:
        return settings.pretrained
    return f"random:seed={settings.seed}"


def _pair(size: Any) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _identity(settings: BackboneSettings, preprocess: dict, image_size: Any, dim: int) -> Identity:
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
    if settings.pretrained and not settings.checkpoint:
        tag = open_clip.get_pretrained_cfg(settings.model, settings.pretrained)
        if not tag:
            known = ", ".join(open_clip.list_pretrained_tags_by_model(settings.model)) or "none"
            raise ValueError(
                f"open_clip has no pretrained weights {settings.pretrained!r} for "
                f"{settings.model} (known tags: {known})"
            )
        preprocess = merge_preprocess_dict(preprocess, tag)
    return _identity(settings, preprocess, config["vision_cfg"]["image_size"], config["embed_dim"])


def loaded_identity(settings: BackboneSettings, model: Any) -> Identity:
    """The identity of a built model, from what open_clip attached to it."""
    preprocess = model.visual.preprocess_cfg
    return _identity(settings, preprocess, preprocess["size"], model.visual.output_dim)


def create_backbone(settings: BackboneSettings, device: str = "cpu") -> tuple[Any, Any]:
    """The model in eval mode and its preprocessing transform.

    A local checkpoint wins over a pretrained tag; with neither, weights are drawn from
    `settings.seed`, so an untrained backbone is still the same one on every machine.
    """
    import open_clip
    import torch

    register_model_configs()
    checkpoint = settings.checkpoint or None
    if checkpoint and not Path(checkpoint).expanduser().is_file():
        raise FileNotFoundError(f"backbone checkpoint not found: {checkpoint}")
    torch.manual_seed(settings.seed)
    weights = str(Path(checkpoint).expanduser()) if checkpoint else settings.pretrained or None
    model, _, preprocess = open_clip.create_model_and_transforms(
        settings.model,
        pretrained=weights,
        device=device,
        weights_only=True,
    )
    return model.eval(), preprocess


@dataclass(frozen=True)
class Backbone:
    """A model ready to embed: on its device, with the precision it runs at."""

    model: Any
    identity: Identity
    device: str
    autocast: Any  # torch dtype or None

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
    return Backbone(model, actual, device, autocast_dtype(settings.precision, device))
