"""The real production backbone, ViT-L-14 with OpenAI's weights, on random values: a local
copy declared as `openai` and the same file in an offline Hugging Face cache give QuickGELU
embeddings equal to open_clip's own, under the identity LAION's head was made for.

The weights are built once for the module (ViT-L-14 with QuickGELU, as open_clip builds
OpenAI's CLIP, saved as an fp16 safetensors state dict of some 0.9 GB)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import open_clip
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import save_file

from assets.embeddings.store import IDENTITY_KEY, WEIGHTS_KEY, vectors_of
from orchestration.backbone import identity, load_backbone
from orchestration.settings import BackboneSettings
from scoretag.cli import cli
from tests.conftest import shared_path
from tests.embeddings.openai_tiny import fill_hf_cache, sha256_of

SCORETAG = Path(sys.executable).parent / "scoretag"
LAION = "models/laion-aesthetic-v2/sac+logos+ava1-l14-linearMSE.pth"
HF_REPO = "timm/vit_large_patch14_clip_224.openai"


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """Random ViT-L-14 weights in OpenAI's network (QuickGELU), as an fp16 state dict."""
    torch.manual_seed(0)
    model = open_clip.create_model("ViT-L-14", force_quick_gelu=True)
    path = tmp_path_factory.mktemp("vit-l-14") / "vit-l-14-openai.safetensors"
    save_file({k: v.detach().half().contiguous() for k, v in model.state_dict().items()}, path)
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[Path]:
    """Three pictures of different sizes and content, as PNG (decoded the same everywhere)."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    paths = []
    for n, (w, h) in enumerate([(320, 240), (224, 300), (500, 500)]):
        gradient = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
        noise = rng.normal(0, 40, (h, w, 3)).astype(np.float32)
        pixels = np.clip(gradient * (n + 1) / 3 + noise + 60 * n, 0, 255).astype(np.uint8)
        path = folder / f"{n}.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def reference(weights: Path, images: list[Path]) -> dict[str, np.ndarray]:
    """open_clip's own unit embeddings of the images from that file: told QuickGELU, as
    OpenAI's weights need, and left to the config's GELU."""
    found = {}
    for name, quick in (("quick_gelu", True), ("gelu", False)):
        model, _, preprocess = open_clip.create_model_and_transforms(
            "ViT-L-14", pretrained=str(weights), force_quick_gelu=quick
        )
        batch = torch.stack([preprocess(Image.open(p).convert("RGB")) for p in images])
        with torch.inference_mode():
            vectors = model.eval().encode_image(batch).float()
        found[name] = torch.nn.functional.normalize(vectors, dim=-1).numpy()
        del model
    return found


def config_file(folder: Path, weights: Path | None) -> Path:
    checkpoint = f'checkpoint = "{weights}"\n' if weights else ""
    path = folder / "scoretag.toml"
    path.write_text(
        '[backbone]\nmodel = "ViT-L-14"\npretrained = "openai"\n'
        f'{checkpoint}device = "cpu"\nprecision = "fp32"\nbatch_size = 4\n\n[embed]\nworkers = 0\n'
    )
    return path


def production(home: Path, config: Path) -> list[str]:
    return ["--profile", "production", "--home", str(home), "--config", str(config)]


def read_embeddings(path: Path) -> tuple[dict, dict | None, np.ndarray, list[str]]:
    table = pq.read_table(path)
    metadata = table.schema.metadata
    found = json.loads(metadata[IDENTITY_KEY])
    provenance = json.loads(metadata[WEIGHTS_KEY]) if WEIGHTS_KEY in metadata else None
    vectors = vectors_of(table["embedding"], found["embed_dim"]).astype(np.float32)
    return found, provenance, vectors, table["path"].to_pylist()


def assert_open_clips_quick_gelu(vectors: np.ndarray, reference: dict[str, np.ndarray]) -> None:
    ours = np.abs(vectors - reference["quick_gelu"]).max()
    assert ours < 5e-3  # fp16 storage of unit vectors, and resampling rounding
    assert np.abs(vectors - reference["gelu"]).max() > 4 * ours


def test_a_declared_local_copy_is_openai_clip_with_quick_gelu(weights, images, reference):
    settings = BackboneSettings(
        model="ViT-L-14",
        pretrained="openai",
        checkpoint=str(weights),
        device="cpu",
        precision="fp32",
        batch_size=4,
    )
    backbone = load_backbone(settings)
    assert backbone.identity == identity(BackboneSettings(model="ViT-L-14", pretrained="openai"))
    assert backbone.identity.activation == "quick_gelu" and backbone.identity.weights == "openai"
    blocks = backbone.model.visual.transformer.resblocks
    assert {type(b.mlp.gelu).__name__ for b in blocks} == {"QuickGELU"}
    assert backbone.provenance["sha256"] == sha256_of(weights)
    from scoretag.api import embed_images

    vectors, frame = embed_images(images, backbone=backbone)
    assert frame["ok"].all()
    assert_open_clips_quick_gelu(vectors.astype(np.float32), reference)


def test_scoretag_embed_then_the_laion_head_activates_and_scores(
    weights, images, reference, tmp_path: Path
):
    laion = shared_path(LAION)
    runner = CliRunner()
    args = production(tmp_path / "home", config_file(tmp_path, weights))
    out = tmp_path / "embeddings.parquet"
    result = runner.invoke(cli, [*args, "embed", *map(str, images), "--out", str(out)])
    assert result.exit_code == 0, result.output
    found, provenance, vectors, paths = read_embeddings(out)
    assert found["activation"] == "quick_gelu" and found["weights"] == "openai"
    assert provenance == {
        "pretrained": "openai",
        "checkpoint": str(weights.resolve()),
        "sha256": sha256_of(weights),
    }
    order = [paths.index(str(p)) for p in images]
    assert_open_clips_quick_gelu(vectors[order], reference)

    info = runner.invoke(cli, [*args, "info"])
    assert "declared local copy" in info.output and sha256_of(weights) in info.output
    assert "(quick_gelu)" in info.output

    head_dir = tmp_path / "laion"
    result = runner.invoke(cli, [*args, "head", "import-laion", str(laion), "--out", str(head_dir)])
    assert result.exit_code == 0, result.output
    version = result.output.split("version ")[1].split(",")[0].strip()
    result = runner.invoke(cli, [*args, "head", "activate", version])
    assert result.exit_code == 0, result.output
    scores = tmp_path / "scores.npy"
    result = runner.invoke(
        cli,
        [
            *args,
            "head",
            "predict",
            "--head",
            version,
            "--embeddings",
            str(out),
            "--out",
            str(scores),
        ],
    )
    assert result.exit_code == 0, result.output
    from assets.head.laion import import_laion

    with torch.no_grad():
        expected = import_laion(laion).score(torch.from_numpy(vectors)).numpy()
    np.testing.assert_allclose(np.load(scores), expected, atol=1e-5)

    # the GELU build of the same weights is another space: the head refuses it
    gelu = tmp_path / "gelu.toml"
    gelu.write_text(f'[backbone]\nmodel = "ViT-L-14"\npretrained = ""\ncheckpoint = "{weights}"\n')
    other = production(tmp_path / "home", gelu)
    result = runner.invoke(cli, [*other, "head", "activate", version])
    assert result.exit_code == 1 and "not activated" in result.output


def test_the_same_weights_from_an_offline_hugging_face_cache(
    weights, images, reference, tmp_path: Path
):
    laion = shared_path(LAION)
    hf_home = tmp_path / "hf"
    fill_hf_cache(hf_home / "hub", HF_REPO, {"open_clip_model.safetensors": weights})
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_HUB_CACHE", None)
    args = [str(SCORETAG), *production(tmp_path / "home", config_file(tmp_path, None))]

    def scoretag(*more: str) -> subprocess.CompletedProcess:
        return subprocess.run([*args, *more], env=env, capture_output=True, text=True)

    info = scoretag("info")
    assert "from the Hugging Face cache" in info.stdout, info.stdout + info.stderr
    out = tmp_path / "offline.parquet"
    result = scoretag("embed", *map(str, images), "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    found, provenance, vectors, paths = read_embeddings(out)
    assert found["activation"] == "quick_gelu" and provenance is None
    assert found == json.loads(
        identity(BackboneSettings(model="ViT-L-14", pretrained="openai")).to_json()
    )
    order = [paths.index(str(p)) for p in images]
    assert_open_clips_quick_gelu(vectors[order], reference)
    result = scoretag("head", "import-laion", str(laion), "--out", str(tmp_path / "laion"))
    assert result.returncode == 0, result.stdout + result.stderr
    version = result.stdout.split("version ")[1].split(",")[0].strip()
    result = scoretag("head", "activate", version)
    assert result.returncode == 0, result.stdout + result.stderr

    # an empty cache, offline: the error says what to fetch
    env["HF_HOME"] = str(tmp_path / "empty")
    result = scoretag("embed", str(images[0]), "--out", str(tmp_path / "none.parquet"))
    assert result.returncode == 1
    assert "HF_HUB_OFFLINE" in result.stderr + result.stdout
    assert f"hf download {HF_REPO} open_clip_model.safetensors" in result.stderr + result.stdout


def test_run_job_catalog_scores_with_the_laion_head_and_no_labels(weights, tmp_path: Path):
    """The zero-label path of a curator with the real head and backbone: a few posts and their
    images, ViT-L-14 declared `openai` from a local file, LAION's head imported and activated,
    `scoretag run --job catalog`: the catalog holds LAION's scores of the stored embeddings,
    worked out here in numpy from the checkpoint itself."""
    from tests.head.test_laion import laion_numpy

    laion = shared_path(LAION)
    config = config_file(tmp_path, weights)
    config.write_text(config.read_text() + "\n[demo]\nimages = 60\nposts = 200\n")
    home = tmp_path / "home"
    # The demo profile makes the posts and their md5-named images; the backbone is ViT-L-14.
    args = ["--profile", "demo", "--home", str(home), "--config", str(config)]
    runner = CliRunner()
    result = runner.invoke(cli, [*args, "demo", "build", "--workers", "2"])
    assert result.exit_code == 0, result.output
    # One API page of two sites (one with votes and favourites, one with a score only): a
    # dozen or so images, each embedded by ViT-L-14 on the CPU.
    for path in (home / "inbox").glob("*/*"):
        if not (path.name.endswith("-p001.json") and path.parent.name in ("e621", "gelbooru")):
            path.unlink()
    result = runner.invoke(cli, [*args, "run", "--job", "ingest"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "laion"
    result = runner.invoke(cli, [*args, "head", "import-laion", str(laion), "--out", str(out)])
    assert result.exit_code == 0, result.output
    version = result.output.split("version ")[1].split(",")[0].strip()
    result = runner.invoke(cli, [*args, "head", "activate", version])
    assert result.exit_code == 0, result.output

    result = runner.invoke(cli, [*args, "run", "--job", "catalog"])
    assert result.exit_code == 0, result.output
    assert f"meanwhile the active head {version} scores the catalog" in result.output

    import duckdb

    from orchestration.profile import load_profile

    profile = load_profile("demo", str(home), str(config))
    with duckdb.connect(str(profile.layout.catalog), read_only=True) as con:
        rows = con.execute(
            "SELECT image_key, score FROM scores WHERE head_version = ?", [version]
        ).fetchall()
    stored = {}
    for shard in sorted((profile.layout.data / "embeddings").rglob("part-*.parquet")):
        table = pq.read_table(shard)
        found = json.loads(table.schema.metadata[IDENTITY_KEY])
        assert found["activation"] == "quick_gelu" and found["model"] == "ViT-L-14"
        vectors = vectors_of(table["embedding"], found["embed_dim"])
        stored.update(zip(table["image_key"].to_pylist(), vectors, strict=True))
    assert len(rows) >= 10 and {key for key, _ in rows} <= set(stored)
    keys = [key for key, _ in rows]
    want = laion_numpy(laion, np.stack([stored[k] for k in keys]).astype(np.float32))
    assert ((want > 0) & (want < 1)).all()  # none clipped: the ratings themselves compared
    assert np.ptp(want) > 0.01
    np.testing.assert_allclose([score for _, score in rows], want, atol=1e-5)
