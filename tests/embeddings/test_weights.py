"""The network for the weights, local and offline weights, OpenAI's TorchScript files: on a
tiny CLIP laid out as OpenAI's, checked against open_clip's own models and loaders."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import open_clip
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner
from huggingface_hub import constants as hf_constants
from safetensors.torch import save_file

from assets.embeddings.store import IDENTITY_KEY, WEIGHTS_KEY, EmbeddingStore
from orchestration import weights as weights_lib
from orchestration.backbone import Identity, create_backbone, identity, load_backbone
from orchestration.settings import BackboneSettings
from scoretag.cli import cli
from tests.embeddings import openai_tiny
from tests.embeddings.openai_tiny import TINY

VIT_L_OPENAI_SHA = "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836"
# The id every ViT-L-14 + openai store got before identities recorded the activation (those
# stores were built with GELU): it must still be the id of that identity JSON.
OLD_VIT_L_ID = "ViT-L-14__openai__fd4967e011"


@pytest.fixture(scope="module", autouse=True)
def _tiny_config(tmp_path_factory):
    openai_tiny.register_config(tmp_path_factory.mktemp("configs"))


@pytest.fixture(autouse=True)
def _published(monkeypatch: pytest.MonkeyPatch) -> None:
    """TINY has an `openai` tag (QuickGELU) in open_clip's table, as ViT-L-14 has."""
    openai_tiny.publish(monkeypatch, "0" * 64)


@pytest.fixture
def torchscript(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, torch.nn.Module]:
    """OpenAI-style TorchScript file of the tiny CLIP, published under its sha256."""
    path = openai_tiny.write_torchscript(openai_tiny.build(seed=3), tmp_path / "tiny-openai.pt")
    openai_tiny.publish(monkeypatch, openai_tiny.sha256_of(path))
    return path, torch.jit.load(str(path)).eval()


def declared(checkpoint: Path, **update) -> BackboneSettings:
    fields = {"pretrained": "openai", "device": "cpu", "precision": "fp32", **update}
    return BackboneSettings(model=TINY, checkpoint=str(checkpoint), **fields)


def encode(model, images: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model.encode_image(images).float()


# --- the network for the weights ----------------------------------------------------------


def test_openai_weights_get_quick_gelu_and_the_identity_records_it():
    vit_l = identity(BackboneSettings(model="ViT-L-14", pretrained="openai"))
    assert open_clip.get_model_config("ViT-L-14").get("quick_gelu") is None  # GELU config
    assert vit_l.activation == "quick_gelu" and vit_l.activation_name == "quick_gelu"
    assert json.loads(vit_l.to_json())["activation"] == "quick_gelu"
    laion = identity(BackboneSettings(model="ViT-L-14", pretrained="laion2b_s32b_b82k"))
    assert laion.activation is None and laion.activation_name == "gelu"
    # the -quickgelu config with the same weights: another model name, the same network
    same = identity(BackboneSettings(model="ViT-L-14-quickgelu", pretrained="openai"))
    assert same.activation == "quick_gelu" and same.id != vit_l.id


def test_an_identity_without_activation_keeps_its_json_and_its_id():
    new = identity(BackboneSettings(model="ViT-L-14", pretrained="openai"))
    old_json = replace(new, activation=None).to_json()
    assert "activation" not in old_json
    old = Identity.from_json(old_json)
    assert old.to_json() == old_json and old.id == OLD_VIT_L_ID
    # the GELU store keeps its folder; the QuickGELU embeddings go to a new one
    assert new.id != OLD_VIT_L_ID and Identity.from_json(new.to_json()) == new


def test_a_quickgelu_config_with_gelu_weights_is_an_error_naming_both():
    settings = BackboneSettings(model="ViT-L-14-quickgelu", pretrained="laion2b_s32b_b82k")
    with pytest.raises(ValueError) as raised:
        identity(settings)
    message = str(raised.value)
    assert "ViT-L-14-quickgelu builds QuickGELU" in message
    assert "'laion2b_s32b_b82k' weights" in message and "trained with GELU" in message
    assert "model = 'ViT-L-14'" in message


def test_a_config_saying_gelu_for_quick_gelu_weights_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    name = openai_tiny.register_config(tmp_path, f"{TINY}-gelu", quick_gelu=False)
    entry = open_clip.pretrained._pcfg(url="https://example.invalid/x.pt", quick_gelu=True)
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, name, {"openai": entry})
    checkpoint = tmp_path / "w.safetensors"
    checkpoint.write_bytes(b"unused")
    settings = BackboneSettings(model=name, pretrained="openai", checkpoint=str(checkpoint))
    for call in (identity, create_backbone):
        with pytest.raises(ValueError, match=rf"model config {name} sets quick_gelu=False .*GELU"):
            call(settings)


def test_the_built_network_is_checked_against_the_activation(
    torchscript, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    out = tmp_path / "tiny.safetensors"
    weights_lib.convert_openai(torchscript[0], TINY, out)
    model, _ = create_backbone(declared(out))
    assert weights_lib.built_activation(model) == "quick_gelu"
    blocks = model.visual.transformer.resblocks
    assert all(type(b.mlp.gelu).__name__ == "QuickGELU" for b in blocks)
    # an open_clip that ignored force_quick_gelu would build GELU: refused, not filed wrongly
    real = open_clip.create_model_and_transforms

    def ignoring(*args, force_quick_gelu=False, **kwargs):
        return real(*args, **kwargs)

    monkeypatch.setattr(open_clip, "create_model_and_transforms", ignoring)
    with pytest.raises(RuntimeError, match="built with gelu, but its weights need quick_gelu"):
        create_backbone(declared(out))


# --- OpenAI's TorchScript files -----------------------------------------------------------


def test_a_torchscript_checkpoint_is_refused_with_the_conversion_command(torchscript):
    path, _ = torchscript
    with pytest.raises(ValueError) as raised:
        load_backbone(declared(path))
    message = str(raised.value)
    assert "TorchScript archive" in message
    assert f"scoretag backbone convert-openai {path} --model {TINY} --out" in message


def test_convert_openai_gives_the_torchscript_models_embeddings_under_the_tags_identity(
    torchscript, tmp_path: Path
):
    path, scripted = torchscript
    out = tmp_path / "converted.safetensors"
    result = CliRunner().invoke(
        cli, ["backbone", "convert-openai", str(path), "--model", TINY, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert 'pretrained = "openai"' in result.output
    assert f'checkpoint = "{out.resolve()}"' in result.output
    backbone = load_backbone(declared(out))
    assert backbone.identity == identity(declared(out))
    assert backbone.identity.weights == "openai" and backbone.identity.activation == "quick_gelu"
    assert backbone.provenance == {
        "pretrained": "openai",
        "checkpoint": str(out.resolve()),
        "sha256": openai_tiny.sha256_of(out),
    }
    images = torch.rand(3, 3, 32, 32)
    reference = encode(scripted, images)
    ours = encode(backbone.model, images)
    # OpenAI's loader stores the weights in fp16, as OpenAI's own files hold them
    assert (ours - reference).abs().max() < 2e-2 * reference.abs().max()
    # exactly what open_clip builds from the file when told the activation...
    quick, _, _ = open_clip.create_model_and_transforms(
        TINY, pretrained=str(out), force_quick_gelu=True
    )
    assert torch.equal(ours, encode(quick.eval(), images))
    # ... and not what its GELU config builds from the same weights
    gelu, _, _ = open_clip.create_model_and_transforms(TINY, pretrained=str(out))
    assert (encode(gelu.eval(), images) - ours).abs().max() > 1e-3


def test_convert_openai_refuses_a_file_that_is_not_openais(
    torchscript, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path, _ = torchscript
    openai_tiny.publish(monkeypatch, "0" * 64)
    with pytest.raises(ValueError, match=f"but OpenAI's {TINY} file .* has {'0' * 64}"):
        weights_lib.convert_openai(path, TINY, tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


def test_convert_openai_checks_the_real_vit_l_14_sha256(tmp_path: Path):
    wrong = tmp_path / "ViT-L-14.pt"
    wrong.write_bytes(b"not OpenAI's file")
    out = tmp_path / "vit-l-14.safetensors"
    result = CliRunner().invoke(
        cli, ["backbone", "convert-openai", str(wrong), "--model", "ViT-L-14", "--out", str(out)]
    )
    assert result.exit_code == 1
    assert VIT_L_OPENAI_SHA in result.output and "not that file" in result.output
    assert not out.exists()
    result = CliRunner().invoke(
        cli, ["backbone", "convert-openai", str(wrong), "--model", "ViT-L-14-nope", "--out", "x"]
    )
    assert result.exit_code == 1 and "give a file name ending in .safetensors" in result.output


# --- local checkpoints --------------------------------------------------------------------


def test_state_dicts_load_from_safetensors_pt_and_bin(tmp_path: Path):
    source = openai_tiny.build(seed=5)
    state = source.state_dict()
    files = {
        "w.safetensors": lambda p: save_file({k: v.contiguous() for k, v in state.items()}, p),
        "w.pt": lambda p: torch.save(state, p),
        "w.bin": lambda p: torch.save(state, p, _use_new_zipfile_serialization=False),
        "wrapped.pt": lambda p: torch.save({"state_dict": state, "epoch": 3}, p),
    }
    images = torch.rand(2, 3, 32, 32)
    for name, write in files.items():
        write(tmp_path / name)
        backbone = load_backbone(declared(tmp_path / name))
        assert torch.equal(encode(backbone.model, images), encode(source, images)), name
        undeclared = load_backbone(declared(tmp_path / name, pretrained=""))
        digest = openai_tiny.sha256_of(tmp_path / name)
        assert undeclared.identity.weights == f"file:sha256:{digest}" and not undeclared.provenance
        # undeclared, the config's own activation (GELU) is built
        assert undeclared.identity.activation is None


def test_checkpoints_open_clip_cannot_load_safely_are_refused(tmp_path: Path):
    pickled = tmp_path / "module.pt"
    torch.save(openai_tiny.build(seed=1), pickled)
    with pytest.raises(ValueError, match="refused by torch.load\\(weights_only=True\\)"):
        create_backbone(declared(pickled))
    misnamed = tmp_path / "weights.bin"
    save_file({"x": torch.zeros(2)}, misnamed)
    with pytest.raises(ValueError, match="rename it to end in .safetensors"):
        create_backbone(declared(misnamed))
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"<html>not found</html>")
    with pytest.raises(ValueError, match="neither a safetensors file nor a PyTorch checkpoint"):
        create_backbone(declared(garbage))


def test_the_store_keeps_a_declared_copys_provenance_beside_the_identity(tmp_path: Path):
    import numpy as np

    source = openai_tiny.build(seed=2)
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, path)
    settings = declared(path)
    provenance = load_backbone(settings).provenance
    store = EmbeddingStore(tmp_path / "store", identity(settings), provenance)
    shard = store.ensure().write_shard("p", ["a"], np.ones((1, 32), np.float16))
    metadata = pq.read_schema(str(shard)).metadata
    assert json.loads(metadata[WEIGHTS_KEY]) == {
        "pretrained": "openai",
        "checkpoint": str(path.resolve()),
        "sha256": openai_tiny.sha256_of(path),
    }
    assert "sha256" not in metadata[IDENTITY_KEY].decode()  # the id does not depend on the file
    store.verify(shard)


# --- the Hugging Face cache, offline ------------------------------------------------------


@pytest.fixture
def offline_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "hf" / "hub"
    cache.mkdir(parents=True)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    openai_tiny.publish(monkeypatch, "0" * 64, hf_hub=f"{openai_tiny.HF_REPO}/")
    return cache


def test_open_clip_asks_the_hub_for_these_files():
    cfg = open_clip.get_pretrained_cfg("ViT-L-14", "openai")
    assert weights_lib.hf_files(cfg) == (
        "timm/vit_large_patch14_clip_224.openai",
        ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"),
    )


@pytest.mark.parametrize("filename", ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"])
def test_a_tag_loads_offline_from_a_prefilled_cache(offline_cache: Path, filename: str):
    source = openai_tiny.build(seed=4)
    weights = offline_cache.parent / filename
    if filename.endswith(".safetensors"):
        save_file({k: v.contiguous() for k, v in source.state_dict().items()}, weights)
    else:
        torch.save(source.state_dict(), weights)
    openai_tiny.fill_hf_cache(offline_cache, openai_tiny.HF_REPO, {filename: weights})
    settings = BackboneSettings(model=TINY, pretrained="openai", device="cpu", precision="fp32")
    backbone = load_backbone(settings)
    assert backbone.identity.weights == "openai" and backbone.identity.activation == "quick_gelu"
    images = torch.rand(2, 3, 32, 32)
    assert torch.equal(encode(backbone.model, images), encode(source, images))
    assert "from the Hugging Face cache" in weights_lib.describe_source(TINY, "openai", "", 0)


def test_offline_without_the_weights_in_the_cache_says_what_to_fetch(offline_cache: Path):
    settings = BackboneSettings(model=TINY, pretrained="openai", device="cpu")
    with pytest.raises(FileNotFoundError) as raised:
        load_backbone(settings)
    message = str(raised.value)
    assert "HF_HUB_OFFLINE" in message and str(offline_cache) in message
    assert openai_tiny.HF_REPO in message and "open_clip_model.safetensors" in message
    assert f"hf download {openai_tiny.HF_REPO} open_clip_model.safetensors" in message
    assert "NOT in the Hugging Face cache" in weights_lib.describe_source(TINY, "openai", "", 0)
