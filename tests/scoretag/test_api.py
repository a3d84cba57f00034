"""The Python API (`import scoretag`), checked against open_clip's own model and transform,
plain numpy for the head, and a catalog built by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import duckdb
import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

import scoretag
from assets.head import paths
from assets.head.artifact import BackboneMismatch, build_card
from assets.head.network import Architecture, HeadNet
from orchestration.backbone import identity, register_model_configs
from tests.catalog.test_queries import build_catalog

SIZES = [(320, 240), (97, 301), (224, 224), (640, 64)]
# The untrained backbone maps every picture close to every other: a steep head spreads them.
SCALE = 8.0


def _picture(path: Path, size: tuple[int, int], seed: int) -> Path:
    rng = np.random.default_rng(seed)
    # Smooth pictures: noise would make the fp16 store's rounding the larger part of the test.
    small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(small).resize(size, Image.Resampling.BILINEAR).save(path)
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def _register_head(home: Path, center_on: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """A ReLU head made for the demo profile's backbone, registered and active; returns its
    weights as plain arrays, for a reference that does not go through the head's code. The
    untrained backbone maps every picture close to every other, so the head is steep and, given
    `center_on`, centred on those embeddings: their scores spread over [0, 1] unclipped."""
    layout = scoretag.load_profile("demo", home).layout
    backbone = identity(scoretag.load_profile("demo", home).settings.backbone)
    torch.manual_seed(7)
    net = HeadNet(
        Architecture((backbone.embed_dim, 16, 1), ("relu", "none"), scale=SCALE, shift=0.5)
    )
    weights = {k: v.detach().numpy().astype(np.float64) for k, v in net.state_dict().items()}
    if center_on is not None:
        bias = weights["linears.1.bias"] - _numpy_scores(center_on, weights, raw=True).mean()
        net.linears[1].bias.data = torch.tensor(bias, dtype=torch.float32)
        weights["linears.1.bias"] = bias
    registry = paths.registry(layout)
    head = registry.save(net, build_card(net, backbone=asdict(backbone), head_type="mlp"))
    registry.activate(head.version, "test")
    return weights


@pytest.fixture
def head_weights(home: Path) -> dict[str, np.ndarray]:
    return _register_head(home)


def _numpy_scores(vectors: np.ndarray, w: dict[str, np.ndarray], raw: bool = False) -> np.ndarray:
    x = vectors.astype(np.float64)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    hidden = np.maximum(x @ w["linears.0.weight"].T + w["linears.0.bias"], 0)
    out = hidden @ w["linears.1.weight"].T + w["linears.1.bias"]
    if raw:
        return out[:, 0]
    return np.clip(out[:, 0] * SCALE + 0.5, 0, 1)


def _open_clip_embeddings(files: list[Path]) -> np.ndarray:
    """open_clip's own model and eval transform, with the demo profile's seeded init."""
    register_model_configs()
    torch.manual_seed(0)
    model, _, transform = open_clip.create_model_and_transforms("scoretag-tiny")
    with torch.inference_mode():
        pixels = torch.stack([transform(Image.open(p).convert("RGB")) for p in files])
        features = model.eval().encode_image(pixels)
    return torch.nn.functional.normalize(features, dim=-1).numpy()


def test_import_is_light():
    """`import scoretag` pulls in neither torch nor Dagster: a notebook pays for what it uses."""
    code = (
        "import sys, scoretag; print(json.dumps(sorted(set(sys.modules) & {'torch', 'dagster'})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", f"import json; {code}"], capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == []
    assert set(scoretag.__all__) <= set(dir(scoretag))
    with pytest.raises(AttributeError):
        scoretag.no_such_name  # noqa: B018


def test_score_images_matches_open_clip_and_the_heads_weights(tmp_path, home):
    files = [_picture(tmp_path / f"p{i}.png", size, i) for i, size in enumerate(SIZES)]
    reference = _open_clip_embeddings(files)
    head_weights = _register_head(home, center_on=reference)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not a whole jpeg")
    asked = [files[0], broken, *files[1:], tmp_path / "absent.png"]

    frame = scoretag.score_images(asked, profile="demo", home=home)

    assert frame["path"].to_list() == [str(p) for p in asked]
    # The reference: open_clip's own model and eval transform, with the profile's seeded init.
    expected = _numpy_scores(reference, head_weights)
    got = frame.filter(frame["reason"] == "")["score"].to_numpy()
    # The pipeline keeps fp16 vectors: a few 1e-4 of a score.
    np.testing.assert_allclose(got, expected, atol=2e-3)
    assert (
        expected.min() > 0 and expected.max() < 1 and expected.std() > 0.01
    )  # distinct pictures, distinct scores: the check has teeth
    failed = dict(zip(frame["path"], frame["reason"], strict=True))
    assert failed[str(broken)] and failed[str(tmp_path / "absent.png")] == "missing"
    assert frame.filter(frame["reason"] != "")["score"].null_count() == 2


def test_embeddings_and_scores_agree(tmp_path, home, head_weights):
    files = [_picture(tmp_path / f"p{i}.png", size, i) for i, size in enumerate(SIZES)]
    vectors, frame = scoretag.embed_images(files, profile="demo", home=home)
    dim = identity(scoretag.load_profile("demo", home).settings.backbone).embed_dim
    assert vectors.shape == (len(files), dim) and vectors.dtype == np.float16
    assert frame["ok"].all()
    np.testing.assert_allclose(vectors, _open_clip_embeddings(files), atol=2e-3)
    scores = scoretag.score_embeddings(vectors, profile="demo", home=home)
    np.testing.assert_allclose(scores, _numpy_scores(vectors, head_weights), atol=1e-5)


def test_load_head_by_version_prefix_and_directory(home, head_weights):
    active = scoretag.load_head(profile="demo", home=home)
    assert scoretag.load_head(active.version[:6], profile="demo", home=home).card == active.card
    directory = paths.registry(scoretag.load_profile("demo", home).layout).path(active.version)
    assert scoretag.load_head(directory).version == active.version


def test_no_active_head_says_what_to_do(home):
    with pytest.raises(LookupError, match="no active head"):
        scoretag.load_head(profile="demo", home=home)


def test_a_head_for_another_backbone_is_refused(tmp_path, home):
    settings = scoretag.load_profile("demo", home).settings
    other = replace(identity(settings.backbone), weights="openai")
    net = HeadNet(Architecture((other.embed_dim, 1), ("none",)))
    registry = paths.registry(scoretag.load_profile("demo", home).layout)
    head = registry.save(net, build_card(net, backbone=asdict(other)))
    picture = _picture(tmp_path / "p.png", (64, 64), 0)
    with pytest.raises(BackboneMismatch):
        scoretag.score_images([picture], head=head, profile="demo", home=home)


def test_open_catalog_reads_and_refuses_writes(home):
    home.mkdir(parents=True)
    build_catalog(home / "catalog.duckdb")
    con = scoretag.open_catalog("demo", home, timeout_s=0)
    try:
        top = con.sql(
            "SELECT post_key FROM catalog WHERE site = 'alpha' AND NOT is_deleted "
            "ORDER BY score DESC LIMIT 1"
        ).fetchone()
        assert top == ("alpha:15",)  # alpha:i scores i/20 under the active head
        with pytest.raises(duckdb.Error):
            con.execute("DELETE FROM posts")
        with pytest.raises(duckdb.Error):
            con.execute("SELECT * FROM read_csv('/etc/passwd')")
    finally:
        con.close()
    after = duckdb.connect(str(home / "catalog.duckdb"))
    assert after.sql("SELECT count(*) FROM posts").fetchone() == (31,)


def test_open_catalog_before_any_run(home):
    with pytest.raises(FileNotFoundError, match="run the pipeline first"):
        scoretag.open_catalog("demo", home)
