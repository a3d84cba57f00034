"""A tiny CLIP laid out as OpenAI's (head width 64, so open_clip's OpenAI loader infers the
same network from the weights' shapes), registered with open_clip under TINY, and written
as OpenAI ships its weights: a TorchScript archive."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import open_clip
import pytest
import torch
from open_clip.pretrained import _PRETRAINED, _pcfg

TINY = "scoretag-test-openai"
CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 1},
}
HF_REPO = "scoretag-test/tiny-openai"


def register_config(folder: Path, name: str = TINY, **overrides) -> str:
    """Make the tiny config (with `overrides`) known to open_clip under `name`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps({**CONFIG, **overrides}))
    open_clip.add_model_config(folder)
    return name


def build(seed: int, quick_gelu: bool = True) -> torch.nn.Module:
    """A seeded tiny CLIP whose MLP inputs are scaled up: at open_clip's small init scale
    GELU and QuickGELU nearly agree, and a test could not tell which one was built."""
    torch.manual_seed(seed)
    model = open_clip.create_model(TINY, force_quick_gelu=quick_gelu).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(("mlp.c_fc.weight", "mlp.c_proj.weight")):
                param.mul_(8.0)
    return model


def write_torchscript(model: torch.nn.Module, path: Path) -> Path:
    """`model` saved as OpenAI saved CLIP: a traced TorchScript archive whose state dict has
    OpenAI's key names (open_clip's CLIP kept them) and an `input_resolution` entry."""
    model.register_buffer("input_resolution", torch.tensor(32))
    del model.attn_mask  # OpenAI's Transformer held it as a plain attribute, not in its state
    traced = torch.jit.trace_module(model, {"encode_image": torch.rand(1, 3, 32, 32)})
    torch.jit.save(traced, str(path))
    return path


def publish(monkeypatch: pytest.MonkeyPatch, sha256: str, hf_hub: str = "") -> None:
    """List TINY in open_clip's pretrained table with an `openai` tag whose URL carries
    `sha256`, as OpenAI's entries do (and, if given, a Hugging Face repository)."""
    url = f"https://openaipublic.azureedge.net/clip/models/{sha256}/{TINY}.pt"
    entry = _pcfg(url=url, hf_hub=hf_hub, quick_gelu=True)
    monkeypatch.setitem(_PRETRAINED, TINY, {"openai": entry})


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fill_hf_cache(cache: Path, repo: str, files: dict[str, Path]) -> Path:
    """Lay out a Hugging Face hub cache as huggingface_hub does: refs/main names a snapshot,
    which holds the files (hard links to `files`' values)."""
    revision = "0123456789abcdef0123456789abcdef01234567"
    root = cache / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(revision)
    snapshot = root / "snapshots" / revision
    snapshot.mkdir(parents=True, exist_ok=True)
    for name, source in files.items():
        target = snapshot / name
        try:
            target.hardlink_to(source)
        except OSError:
            target.write_bytes(source.read_bytes())
    return snapshot
