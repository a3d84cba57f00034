"""LAION's improved aesthetic predictor imported as a head: the same scores as LAION's own
module, both layouts, the real released file, refusals, and the `scoretag head` commands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from assets.head.artifact import load_head, save_head
from assets.head.laion import import_laion, laion_card, read_laion
from assets.head.registry import Registry
from scoretag.cli import cli
from tests.conftest import shared_path

REAL = "models/laion-aesthetic-v2/sac+logos+ava1-l14-linearMSE.pth"
DIM = 768
LAYOUTS = ("linearMSE", "reluMSE")


class MLP(nn.Module):
    """LAION's module, as in improved-aesthetic-predictor's simple_inference.py (linearMSE)
    and avaclipmlp_inf_wds-relu.py (reluMSE), less the Lightning training methods."""

    def __init__(self, input_size: int, relu: bool = False):
        super().__init__()
        act = nn.ReLU if relu else nn.Identity
        layers = [
            nn.Linear(input_size, 1024),
            act(),
            nn.Dropout(0.2),
            nn.Linear(1024, 128),
            act(),
            nn.Dropout(0.2),
            nn.Linear(128, 64),
            act(),
            nn.Dropout(0.1),
            nn.Linear(64, 16),
            act(),
            nn.Linear(16, 1),
        ]
        # linearMSE has no activation modules at all: its Sequential indices are 0/2/4/6/7.
        self.layers = nn.Sequential(*(m for m in layers if not isinstance(m, nn.Identity)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def unit_vectors(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def original(layout: str, seed: int, dim: int = DIM) -> MLP:
    """A randomly initialised LAION module whose ratings spread over about -1..12 on these
    test vectors, so that the (s - 1) / 9 map is tested inside [0, 1] and at both clips."""
    torch.manual_seed(seed)
    mlp = MLP(dim, relu=layout == "reluMSE").eval()
    with torch.no_grad():
        raw = mlp(torch.from_numpy(unit_vectors(256, dim, seed=99))).squeeze(-1)
        last = mlp.layers[-1]
        gain = 2.5 / raw.std()
        last.weight.mul_(gain)
        last.bias.copy_((last.bias - raw.mean()) * gain + 5.5)
    return mlp


def save_checkpoint(mlp: nn.Module, path: Path, wrap=lambda state: state) -> Path:
    torch.save(wrap(mlp.state_dict()), path)
    return path


@torch.no_grad()
def expected(mlp: MLP, x: np.ndarray) -> np.ndarray:
    """What LAION's module rates, mapped onto [0, 1] the way the import promises."""
    return np.clip((mlp(torch.from_numpy(x)).squeeze(-1).numpy() - 1.0) / 9.0, 0.0, 1.0)


@torch.no_grad()
def imported_scores(net, x: np.ndarray) -> np.ndarray:
    return net.score(torch.from_numpy(x)).numpy()


def laion_numpy(checkpoint: Path, x: np.ndarray) -> np.ndarray:
    """LAION's MLP worked out in float64 numpy from the checkpoint's raw state dict (either
    layout, unwrapped), on the L2-normalised rows of `x`, mapped onto [0, 1] by (s - 1) / 9."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    relu = "layers.11.weight" in state
    linears = (0, 3, 6, 9, 11) if relu else (0, 2, 4, 6, 7)
    h = np.asarray(x, np.float64)
    h = h / np.linalg.norm(h, axis=1, keepdims=True)
    for n, i in enumerate(linears):
        weight, bias = (state[f"layers.{i}.{p}"].double().numpy() for p in ("weight", "bias"))
        h = h @ weight.T + bias
        if relu and n < 4:
            h = np.maximum(h, 0.0)
    return np.clip((h[:, 0] - 1.0) / 9.0, 0.0, 1.0)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_import_scores_as_laion_module(layout, tmp_path):
    mlp = original(layout, seed=1)
    net, found = read_laion(save_checkpoint(mlp, tmp_path / "head.pth"))
    assert found == layout
    assert net.arch.dims == (DIM, 1024, 128, 64, 16, 1)
    hidden = "relu" if layout == "reluMSE" else "none"
    assert net.arch.activations == (hidden,) * 4 + ("none",)

    x = unit_vectors(256, seed=2)
    want, got = expected(mlp, x), imported_scores(net, x)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    inside = (got > 0) & (got < 1)
    assert inside.mean() > 0.5, "the ratings should mostly land inside 1..10"
    assert (got == 0).any() and (got == 1).any(), "both clips should be exercised"


@pytest.mark.parametrize(
    "wrap",
    [
        lambda s: {f"module.{k}": v for k, v in s.items()},
        lambda s: {f"model.{k}": v for k, v in s.items()},
        lambda s: {"state_dict": s, "epoch": 3},
        lambda s: {"state_dict": {f"module.model.{k}": v.half() for k, v in s.items()}},
    ],
    ids=["module-prefix", "model-prefix", "state_dict-wrapper", "nested-prefix-fp16"],
)
def test_wrapped_checkpoints_import(wrap, tmp_path):
    mlp = original("reluMSE", seed=3)
    net = import_laion(save_checkpoint(mlp, tmp_path / "head.pth", wrap))
    x = unit_vectors(64, seed=4)
    # fp16 weights round the ratings at about 1e-3 of their 1-10 range.
    np.testing.assert_allclose(imported_scores(net, x), expected(mlp, x), atol=5e-3)


def test_dims_come_from_the_weights(tmp_path):
    mlp = original("linearMSE", seed=5, dim=512)
    net = import_laion(save_checkpoint(mlp, tmp_path / "b32.pth"))
    assert net.arch.input_dim == 512
    x = unit_vectors(32, dim=512, seed=6)
    np.testing.assert_allclose(imported_scores(net, x), expected(mlp, x), atol=1e-5)


def test_real_laion_file_imports_as_linear_mse(tmp_path):
    path = shared_path(REAL)
    net, layout = read_laion(path)
    assert layout == "linearMSE"
    mlp = MLP(DIM).eval()
    mlp.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    x = unit_vectors(256, seed=7)
    np.testing.assert_allclose(imported_scores(net, x), expected(mlp, x), atol=1e-5, rtol=0)

    card = laion_card(net, layout, path)
    assert card["head_type"] == "laion-linearMSE"
    assert card["backbone"]["model"] == "ViT-L-14" and card["backbone"]["weights"] == "openai"
    assert card["backbone"]["embed_dim"] == DIM and card["input_dim"] == DIM
    assert card["source"]["file"] == path.name and len(card["source"]["sha256"]) == 64
    assert card["labels"] is None and card["metrics"] == {}
    assert "Apache-2.0" in card["license"]

    saved = save_head(net, card, tmp_path / "head")
    loaded = load_head(tmp_path / "head")
    assert loaded.version == saved.version
    assert save_head(import_laion(path), card, tmp_path / "again").version == saved.version
    np.testing.assert_array_equal(loaded.predict(x), saved.predict(x))
    np.testing.assert_allclose(loaded.predict(x), expected(mlp, x), atol=1e-5, rtol=0)


def test_other_checkpoint_names_both_layouts(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"encoder.weight": torch.zeros(4, 4), "fc.bias": torch.zeros(4)}, path)
    with pytest.raises(ValueError) as caught:
        import_laion(path)
    message = str(caught.value)
    assert "linearMSE" in message and "reluMSE" in message
    assert "encoder.weight" in message and "fc.bias" in message


def test_mismatched_shapes_are_refused(tmp_path):
    state = original("linearMSE", seed=8).state_dict()
    state["layers.4.weight"] = torch.zeros(64, 100)
    with pytest.raises(ValueError, match="layers.4"):
        import_laion(save_checkpoint(nn.Module(), tmp_path / "bad.pth", lambda _: state))


@pytest.mark.parametrize("content", [b"", b"hello world", b"PK\x03\x04 truncated"])
def test_files_that_are_no_checkpoint_are_refused(tmp_path, content):
    path = tmp_path / "not.pth"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a PyTorch checkpoint"):
        import_laion(path)


def _leave_mark(path: str) -> None:
    Path(path).write_text("unpickled")


class Payload:
    """An object whose unpickling would call a function: what weights_only is there to stop."""

    def __init__(self, mark: Path):
        self.mark = mark

    def __reduce__(self):
        return _leave_mark, (str(self.mark),)


def test_pickled_object_is_refused_unopened(tmp_path):
    mark, path = tmp_path / "mark", tmp_path / "evil.pth"
    torch.save({"layers.0.weight": Payload(mark)}, path)
    with pytest.raises(ValueError, match="weights_only") as caught:
        import_laion(path)
    assert isinstance(caught.value.__cause__, Exception)
    assert "Unpickl" in type(caught.value.__cause__).__name__
    assert not mark.exists()


# --- scoretag head ---------------------------------------------------------------------------


def head_cli(home: Path, *args: str, profile: str = "demo"):
    return CliRunner().invoke(cli, ["--profile", profile, "--home", str(home), "head", *args])


def predict_cli(home: Path, head: object, embeddings: Path, out: object):
    return head_cli(
        home, "predict", "--head", str(head), "--embeddings", str(embeddings), "--out", str(out)
    )


def write_shard(path: Path, vectors: np.ndarray) -> Path:
    """A parquet file laid out as the embedding store writes one: fp16 as fixed-size binary."""
    n, dim = vectors.shape
    embedding = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(2 * dim), n, [None, pa.py_buffer(vectors.astype(np.float16).tobytes())]
    )
    keys = pa.array([f"demo:{i}" for i in range(n)])
    pq.write_table(pa.table({"image_key": keys, "embedding": embedding}), path)
    return path


SOURCE = "ava+logos-l14-reluMSE.pth"  # the checkpoint `imported` writes into tmp_path


@pytest.fixture
def imported(tmp_path):
    """A synthetic reluMSE head imported into a fresh demo storage root: (home, head dir,
    version); its checkpoint is tmp_path / SOURCE."""
    home, out = tmp_path / "home", tmp_path / "heads" / "laion"
    source = save_checkpoint(original("reluMSE", seed=10), tmp_path / SOURCE)
    result = head_cli(home, "import-laion", str(source), "--out", str(out))
    assert result.exit_code == 0, result.output
    version = load_head(out).version
    assert version in result.output and "reluMSE" in result.output
    return home, out, version


def test_cli_import_list_activate_predict(imported, tmp_path):
    home, out, version = imported
    registry = Registry(home / "data" / "aesthetic_head")
    assert [c["version"] for c in registry.cards()] == [version]
    assert registry.active_version() is None  # importing does not activate

    listed = head_cli(home, "list")
    assert listed.exit_code == 0, listed.output
    assert version in listed.output and "laion-reluMSE" in listed.output

    # The demo's backbone is not the ViT-L/14 LAION heads read; production's is.
    refused = head_cli(home, "activate", version[:6])
    assert refused.exit_code == 1
    assert "made for ViT-L-14 / openai with QuickGELU embeddings" in refused.output
    assert registry.active_version() is None
    activated = head_cli(home, "activate", version[:6], profile="production")
    assert activated.exit_code == 0, activated.output
    assert registry.active_version() == version
    assert registry.history()[-1]["reason"] == "activated by hand"

    raw = np.random.default_rng(11).standard_normal((300, DIM)).astype(np.float32) * 7.0
    want = laion_numpy(tmp_path / SOURCE, raw)  # rows are normalised before scoring
    assert ((want > 0) & (want < 1)).mean() > 0.5  # mostly unclipped: the ratings are compared
    np.save(tmp_path / "raw.npy", raw)
    for ref in (str(out), version[:8]):  # a directory, then a registry version prefix
        target = tmp_path / f"scores-{ref[-4:]}.npy"
        result = predict_cli(
            home,
            ref,
            tmp_path / "raw.npy",
            str(target),
        )
        assert result.exit_code == 0, result.output
        assert "300" in result.output and "mean" in result.output
        scores = np.load(target)
        assert scores.shape == (300,) and scores.dtype == np.float32
        assert scores.min() >= 0.0 and scores.max() <= 1.0
        np.testing.assert_allclose(scores, want, atol=1e-5, rtol=0)

    unit = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    shard = write_shard(tmp_path / "part-00000.parquet", unit)
    result = predict_cli(
        home,
        version,
        shard,
        str(tmp_path / "shard.npy"),
    )
    assert result.exit_code == 0, result.output
    from_shard = np.load(tmp_path / "shard.npy")
    assert from_shard.shape == (300,)
    # The shard holds the fp16 vectors: LAION's scores of those, close to the fp32 ones.
    fp16 = unit.astype(np.float16)
    np.testing.assert_allclose(from_shard, laion_numpy(tmp_path / SOURCE, fp16), atol=1e-5, rtol=0)
    np.testing.assert_allclose(from_shard, want, atol=2e-3)


def test_cli_predict_list_column_parquet(imported, tmp_path):
    home, out, _ = imported
    vectors = unit_vectors(20, seed=12)
    path = tmp_path / "lists.parquet"
    pq.write_table(pa.table({"embedding": pa.array(list(vectors), pa.list_(pa.float32()))}), path)
    result = predict_cli(
        home,
        out,
        path,
        str(tmp_path / "s.npy"),
    )
    assert result.exit_code == 0, result.output
    want = laion_numpy(tmp_path / SOURCE, vectors)
    np.testing.assert_allclose(np.load(tmp_path / "s.npy"), want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["npy", "shard"])
def test_cli_predict_wrong_dim_is_refused(imported, tmp_path, kind):
    home, out, _ = imported
    vectors = unit_vectors(10, dim=512, seed=13)
    if kind == "npy":
        path = tmp_path / "b32.npy"
        np.save(path, vectors)
    else:
        path = write_shard(tmp_path / "b32.parquet", vectors)
    target = tmp_path / "never.npy"
    result = predict_cli(home, out, path, str(target))
    assert result.exit_code != 0
    assert "512" in result.output and "768" in result.output
    assert not target.exists()


def test_cli_predict_refuses_other_backbone_shard(imported, tmp_path):
    home, out, _ = imported
    path = write_shard(tmp_path / "b32.parquet", unit_vectors(5, seed=14))
    table = pq.read_table(path)
    other = {**load_head(out).card["backbone"], "model": "ViT-B-32", "weights": "laion2b"}
    meta = {b"scoretag.backbone": json.dumps(other).encode()}
    pq.write_table(table.replace_schema_metadata(meta), path)
    result = predict_cli(
        home,
        out,
        path,
        str(tmp_path / "s.npy"),
    )
    assert result.exit_code != 0
    assert "ViT-B-32" in result.output and "ViT-L-14" in result.output


def test_cli_unknown_versions_and_bad_files(imported, tmp_path):
    home, _, version = imported
    unknown = head_cli(home, "activate", "zzzz")
    assert unknown.exit_code != 0
    assert "zzzz" in unknown.output and version in unknown.output

    np.save(tmp_path / "raw.npy", unit_vectors(3))
    missing = predict_cli(
        home,
        "zzzz",
        tmp_path / "raw.npy",
        str(tmp_path / "s.npy"),
    )
    assert missing.exit_code != 0
    assert "zzzz" in missing.output and version in missing.output

    garbage = tmp_path / "garbage.pth"
    torch.save({"w": torch.zeros(2)}, garbage)
    refused = head_cli(home, "import-laion", str(garbage), "--out", str(tmp_path / "g"))
    assert refused.exit_code != 0 and "reluMSE" in refused.output
    assert not (tmp_path / "g").exists()


def test_cli_no_register_leaves_the_registry_alone(tmp_path):
    home, out = tmp_path / "home", tmp_path / "h"
    source = save_checkpoint(original("linearMSE", seed=15), tmp_path / "x.pth")
    result = head_cli(home, "import-laion", str(source), "--out", str(out), "--no-register")
    assert result.exit_code == 0, result.output
    assert load_head(out).card["head_type"] == "laion-linearMSE"
    assert Registry(home / "data" / "aesthetic_head").cards() == []
    listed = head_cli(home, "list")
    assert listed.exit_code == 0 and "No heads" in listed.output
