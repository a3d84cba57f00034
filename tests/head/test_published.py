"""Published heads beside trained ones: an imported V2.5 head is a cross-validation baseline
when its backbone is the active one (LAION's likewise, each by its own name), and the gate
compares a new head with it, as with any active head trained on none of our labels."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from assets.head.artifact import Head, require_backbone
from assets.head.assets import imported_heads
from assets.head.gate import compare, decide
from assets.head.published import (
    LAYOUTS,
    published_card,
    read_published,
    to_headnet,
)
from assets.head.registry import Registry
from assets.head.train import TrainingData, TrainSettings, cross_validate
from orchestration.backbone import identity
from orchestration.settings import BackboneSettings

SO400M = identity(BackboneSettings(model="ViT-SO400M-14-SigLIP-384", pretrained="webli"))
OPENAI = identity(BackboneSettings(model="ViT-L-14", pretrained="openai"))
TINY = identity(BackboneSettings(model="scoretag-tiny", pretrained=""))


def _state(layout: str, dim: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    spec = LAYOUTS[layout]
    dims = [dim, 1024, 128, 64, 16, 1]
    state = {}
    for index, (a, b) in zip(spec.indices, zip(dims[:-1], dims[1:], strict=True), strict=True):
        state[f"{spec.prefix}.{index}.weight"] = torch.randn(b, a, generator=g) / a**0.5
        state[f"{spec.prefix}.{index}.bias"] = torch.randn(b, generator=g) * 0.1
    state[f"{spec.prefix}.{spec.indices[-1]}.bias"] += 5.5  # ratings inside 1-10
    return state


def _import(registry: Registry, tmp_path: Path, layout: str, dim: int, seed: int) -> Head:
    source = tmp_path / f"{layout}-{seed}.pth"
    torch.save(_state(layout, dim, seed), source)
    net, found = read_published(source, LAYOUTS[layout].family)
    assert found.name == layout
    return registry.save(net, published_card(net, found, source))


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "aesthetic_head")


def test_the_newest_imported_head_of_each_family_for_the_backbone(registry, tmp_path):
    laion = _import(registry, tmp_path, "laion-linearMSE", 768, 1)
    _import(registry, tmp_path, "v25", 1152, 2)
    newer = _import(registry, tmp_path, "v25", 1152, 3)
    assert {k: h.version for k, h in imported_heads(registry, SO400M).items()} == {
        "v25": newer.version
    }
    assert {k: h.version for k, h in imported_heads(registry, OPENAI).items()} == {
        "laion": laion.version
    }
    assert imported_heads(registry, TINY) == {}


def test_v25_beside_ridge_in_cross_validation(registry, tmp_path):
    head = _import(registry, tmp_path, "v25", 1152, 4)
    data = _data(head, agree=True)
    cv = cross_validate(data, TrainSettings("ridge", folds=3), imported_heads(registry, SO400M))
    np.testing.assert_allclose(cv.predictions["v25"], head.predict(data.X), atol=1e-6)
    metrics = cv.metrics(data)
    assert {"constant", "ridge", "head", "v25"} <= set(metrics)
    # the labels follow V2.5's own ratings here: it ranks them best
    assert metrics["v25"]["overall"]["spearman"] > metrics["ridge"]["overall"]["spearman"]


def _data(head: Head, agree: bool, n: int = 120) -> TrainingData:
    rng = np.random.default_rng(5)
    X = rng.standard_normal((n, head.input_dim)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    truth = head.predict(X) if agree else X[:, 0] + 0.3 * X[:, 1]
    order = np.argsort(np.argsort(truth))
    labels = 1 + (order * 5 // n).astype(float)  # quintiles: 1-5
    return TrainingData(
        X=X,
        labels=labels,
        sites=np.array(["danbooru", "e621"] * (n // 2)),
        ratings=np.array(["g"] * n),
        post_keys=np.array([f"p{i}" for i in range(n)]),
    )


@pytest.mark.parametrize("agree", [False, True])
def test_the_gate_compares_a_new_head_with_an_active_v25_on_every_label(registry, tmp_path, agree):
    v25 = _import(registry, tmp_path, "v25", 1152, 6)
    require_backbone(v25, asdict(SO400M))  # it activates on its backbone
    registry.activate(v25.version, "imported")
    data = _data(v25, agree)
    cv = cross_validate(data, TrainSettings("ridge", folds=3))
    metrics = cv.metrics(data)
    versus = compare(
        registry.active(),
        labels=data.labels,
        post_keys=data.post_keys,
        X=data.X,
        new_oof=cv.predictions["head"],
        new_cv_spearman=metrics["head"]["overall"]["spearman"],
        min_fresh_labels=30,
        new_version="new",
    )
    assert versus.method == "all_labels" and versus.labels == len(data)
    assert versus.active_type == "v25" and versus.active_trained_on == 0
    decision = decide(metrics, -1.0, 2.0, versus, 0.0)
    # a linear truth ridge learns beats V2.5's random ratings; labels that are V2.5's own
    # ratings keep V2.5 active
    assert decision.passed is not agree, decision.reason


def test_a_v25_state_dict_in_its_whole_model_imports_too(tmp_path):
    state = {f"layers.{k}": v for k, v in _state("v25", 1152, 7).items()}
    state["vision_model.post_layernorm.weight"] = torch.ones(1152)
    net = to_headnet(state, "v25")
    torch.save(state, tmp_path / "whole.pth")
    again, layout = read_published(tmp_path / "whole.pth", "v25")
    assert layout.name == "v25"
    x = torch.nn.functional.normalize(torch.randn(4, 1152), dim=-1)
    assert torch.equal(net.score(x), again.score(x))


def test_a_laion_file_is_not_a_v25_head(tmp_path):
    torch.save(_state("laion-reluMSE", 768, 8), tmp_path / "laion.pth")
    with pytest.raises(ValueError, match="not an Aesthetic Predictor V2.5 head") as caught:
        read_published(tmp_path / "laion.pth", "v25")
    assert "scoring_head.0/2/4/6/8" in str(caught.value) and "layers.0" in str(caught.value)
