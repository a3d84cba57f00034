"""Evaluation sets drawn here, the demo profile's tiny backbone, and heads made for it."""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from assets.evaluation.evaluate import Caches
from assets.head.artifact import Head, build_card
from assets.head.models import fit_ridge
from assets.head.registry import Registry
from orchestration.backbone import identity, load_backbone
from orchestration.settings import BackboneSettings

TINY = BackboneSettings(model="scoretag-tiny", pretrained="", device="cpu", precision="fp32")
PROMPTS = ("a red house at dusk", "a cat on a sofa", "a mountain lake")
SEEDS = (1, 2, 3, 4)


def picture(prompt: int, seed: int, blur: float = 0.0) -> Image.Image:
    """A picture that depends on its prompt and seed: shapes on a coloured ground."""
    rng = np.random.default_rng([prompt, seed])
    base = np.zeros((96, 128, 3), np.float32) + rng.uniform(0, 255, 3)
    ys, xs = np.mgrid[0:96, 0:128]
    for _ in range(4):
        cy, cx, r = rng.uniform(0, 96), rng.uniform(0, 128), rng.uniform(8, 30)
        base[(ys - cy) ** 2 + (xs - cx) ** 2 < r**2] = rng.uniform(0, 255, 3)
    img = Image.fromarray(base.astype(np.uint8))
    return img.filter(ImageFilter.GaussianBlur(blur)) if blur else img


def png(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def write_set(root: Path, blur: float = 0.0, broken: bool = False, prompts: bool = True) -> Path:
    """A folder per prompt, an image per seed, a prompts.jsonl listing them; with `broken`,
    a file cut short at the top."""
    lines = []
    for p, prompt in enumerate(PROMPTS):
        for seed in SEEDS:
            name = f"prompt-{p}/seed-{seed}.png"
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(png(picture(p, seed, blur)))
            lines.append({"file": name, "prompt": prompt, "seed": seed})
    if prompts:
        (root / "prompts.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    if broken:
        whole = png(picture(9, 9))
        (root / "cut.png").write_bytes(whole[: len(whole) // 2])
    return root


def head_for(registry: Registry, settings: BackboneSettings, seed: int) -> Head:
    """A ridge head on random targets, made for `settings`' backbone."""
    ident = identity(settings)
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(200, ident.embed_dim)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    net = fit_ridge(X, np.clip(0.5 + X[:, seed % ident.embed_dim], 0, 1)).net()
    card = build_card(net, backbone=asdict(ident), head_type="ridge", seed=seed)
    return registry.save(net, card)


@pytest.fixture(scope="session")
def tiny_backbone():
    return load_backbone(TINY)


@pytest.fixture
def caches(tmp_path) -> Caches:
    return Caches.at(tmp_path / "embeddings", identity(TINY))
