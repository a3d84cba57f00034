"""SigLIP backbones and Aesthetic Predictor V2.5's head, against their real counterparts.

V2.5 (discus0434/aesthetic-predictor-v2-5, AGPL-3.0: neither installed nor imported here)
feeds its head Hugging Face's `SiglipVisionModel` pooled output divided by its L2 norm, from
pixels made by `SiglipImageProcessor` (PIL bicubic resize to the square, 1/255, mean = std =
0.5). Here the same random weights go into scoretag's backbone (through the real `[backbone]
checkpoint` path, declared a copy of a `webli` tag) and into `transformers.SiglipVisionModel`
(key-mapped), the same files are embedded by both, and V2.5's forward, reimplemented after
its source, is compared with the head `scoretag head import-v25` makes from a state dict of
V2.5's layout.

The forward comparison runs a small SigLIP of the same structure (a timm SigLIP ViT with
attention pooling, registered here, 3 blocks of width 64); the real SO400M-384 layout is
checked structurally: its identity and the key/shape mapping of its whole image tower onto
HF's model of google/siglip-so400m-patch14-384's config, both built on the meta device.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import open_clip
import open_clip.pretrained
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from torch import nn

from assets.embeddings.preprocess import Geometry
from assets.head.artifact import load_head, require_backbone
from assets.images.decode import DEFAULT_MAX_PIXELS, decode, read_bytes
from orchestration import weights as weights_lib
from orchestration.backbone import identity, load_backbone
from orchestration.settings import BackboneSettings
from scoretag.api import embed_images
from scoretag.cli import cli

transformers = pytest.importorskip("transformers")
from transformers import SiglipVisionConfig, SiglipVisionModel  # noqa: E402
from transformers.models.siglip.image_processing_pil_siglip import (  # noqa: E402
    SiglipImageProcessorPil,
)

MODEL = "scoretag-test-SigLIP"
TIMM_NAME = "vit_scoretag_test_patch16_siglip_112"
WIDTH, DEPTH, HEADS, SIZE, PATCH = 64, 3, 2, 112, 16
SO400M = "ViT-SO400M-14-SigLIP-384"
# google/siglip-so400m-patch14-384's config.json (vision_config), as V2.5 loads it.
SO400M_HF = {
    "hidden_size": 1152,
    "intermediate_size": 4304,
    "num_hidden_layers": 27,
    "num_attention_heads": 16,
    "image_size": 384,
    "patch_size": 14,
}


def _register_tiny_siglip() -> None:
    """A timm SigLIP ViT (no class token, attention-pooling head: timm's `*_siglip_*`
    structure, as `vit_so400m_patch14_siglip_384`) small enough for a test."""
    import timm
    from timm.models import register_model
    from timm.models.vision_transformer import _create_vision_transformer

    if timm.is_model(TIMM_NAME):
        return

    def build(pretrained: bool = False, **kwargs):
        args = dict(
            patch_size=PATCH,
            embed_dim=WIDTH,
            depth=DEPTH,
            num_heads=HEADS,
            mlp_ratio=3.0,
            class_token=False,
            global_pool="map",
            img_size=SIZE,
        )
        return _create_vision_transformer(TIMM_NAME, pretrained=pretrained, **{**args, **kwargs})

    build.__name__ = TIMM_NAME
    register_model(build)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> BackboneSettings:
    """The tiny SigLIP as open_clip knows it, with a `webli` tag of SigLIP's preprocessing,
    and its seeded random weights saved as the checkpoint declared a copy of that tag."""
    _register_tiny_siglip()
    root = tmp_path_factory.mktemp("siglip")
    configs = root / "configs"
    configs.mkdir()
    (configs / f"{MODEL}.json").write_text(
        json.dumps(
            {
                "embed_dim": WIDTH,
                "init_logit_bias": -10,
                "custom_text": True,
                "vision_cfg": {
                    "image_size": SIZE,
                    "timm_model_name": TIMM_NAME,
                    "timm_model_pretrained": False,
                    "timm_pool": "map",
                    "timm_proj": "none",
                },
                "text_cfg": {
                    "context_length": 16,
                    "vocab_size": 100,
                    "width": WIDTH,
                    "heads": HEADS,
                    "layers": 1,
                    "no_causal_mask": True,
                    "proj_bias": True,
                    "pool_type": "last",
                    "norm_kwargs": {"eps": 1e-6},
                },
            }
        )
    )
    open_clip.add_model_config(configs)
    table = open_clip.pretrained._PRETRAINED
    table[MODEL] = {"webli": dict(table["ViT-B-16-SigLIP"]["webli"])}
    torch.manual_seed(0)
    model = open_clip.create_model(MODEL)
    _spread(model.visual)
    checkpoint = root / "tiny-siglip-webli.pt"
    torch.save(model.state_dict(), checkpoint)
    yield BackboneSettings(
        model=MODEL,
        pretrained="webli",
        checkpoint=str(checkpoint),
        device="cpu",
        precision="fp32",
        batch_size=4,
    )
    del table[MODEL]


def _spread(module: nn.Module) -> None:
    """Random weights of trained-like scale: timm's init (std 0.02) keeps every GELU input near
    0, where its exact form and its tanh approximation agree; these reach both tails."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim >= 2:
                fan_in = math.prod(p.shape[1:])
                p.copy_(torch.randn(p.shape, generator=g) * 1.5 / math.sqrt(fan_in))
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))


def hf_state_dict(trunk: dict[str, torch.Tensor], depth: int) -> dict[str, torch.Tensor]:
    """timm's SigLIP image tower (open_clip's `visual.trunk.*`) as HF's SiglipVisionModel keys:
    the fused qkv split into q/k/v, the pooling head's q and kv fused into one in_proj."""
    out = {
        "embeddings.patch_embedding.weight": trunk["patch_embed.proj.weight"],
        "embeddings.patch_embedding.bias": trunk["patch_embed.proj.bias"],
        "embeddings.position_embedding.weight": trunk["pos_embed"][0],
        "head.probe": trunk["attn_pool.latent"],
    }
    renamed = {
        "norm1": "layer_norm1",
        "norm2": "layer_norm2",
        "attn.proj": "self_attn.out_proj",
        "mlp.fc1": "mlp.fc1",
        "mlp.fc2": "mlp.fc2",
    }
    for t in ("weight", "bias"):
        for i in range(depth):
            block, layer = f"blocks.{i}.", f"encoder.layers.{i}."
            for theirs, ours in renamed.items():
                out[f"{layer}{ours}.{t}"] = trunk[f"{block}{theirs}.{t}"]
            q, k, v = trunk[f"{block}attn.qkv.{t}"].chunk(3)
            for name, part in (("q", q), ("k", k), ("v", v)):
                out[f"{layer}self_attn.{name}_proj.{t}"] = part
        out[f"post_layernorm.{t}"] = trunk[f"norm.{t}"]
        out[f"head.attention.in_proj_{t}"] = torch.cat(
            [trunk[f"attn_pool.q.{t}"], trunk[f"attn_pool.kv.{t}"]]
        )
        for theirs, ours in (("proj", "attention.out_proj"), ("norm", "layernorm")):
            out[f"head.{ours}.{t}"] = trunk[f"attn_pool.{theirs}.{t}"]
        for fc in ("fc1", "fc2"):
            out[f"head.mlp.{fc}.{t}"] = trunk[f"attn_pool.mlp.{fc}.{t}"]
    return out


def _trunk(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    prefix = "visual.trunk."
    return {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}


def scoring_head(hidden: int) -> nn.Sequential:
    """V2.5's `AestheticPredictorV2_5Head.scoring_head`, as its source builds it."""
    return nn.Sequential(
        nn.Linear(hidden, 1024),
        nn.Dropout(0.5),
        nn.Linear(1024, 128),
        nn.Dropout(0.5),
        nn.Linear(128, 64),
        nn.Dropout(0.5),
        nn.Linear(64, 16),
        nn.Dropout(0.2),
        nn.Linear(16, 1),
    )


class V25(nn.Module):
    """Aesthetic Predictor V2.5's model, after src/aesthetic_predictor_v2_5/siglip_v2_5.py:
    SiglipVisionModel, its pooler_output divided by its norm, then `layers.scoring_head`."""

    def __init__(self, vision: SiglipVisionModel):
        super().__init__()
        self.vision = vision
        self.layers = nn.Module()
        hidden = vision.config.hidden_size
        self.layers.scoring_head = scoring_head(hidden)

    def embeds(self, pixel_values: torch.Tensor) -> torch.Tensor:
        image_embeds = self.vision(pixel_values=pixel_values).pooler_output
        return image_embeds / image_embeds.norm(dim=-1, keepdim=True)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.layers.scoring_head(self.embeds(pixel_values))


def v25_head_state(hidden: int, seed: int = 3) -> dict[str, torch.Tensor]:
    """A random state dict of V2.5's head layout (`scoring_head.{0,2,4,6,8}`), as its released
    file holds: its rating spread over the 1-10 scale on unit vectors."""
    torch.manual_seed(seed)
    seq = scoring_head(hidden).eval()
    with torch.no_grad():
        # The head is linear: its slope on the unit sphere, set to 4 rating points, and its
        # value at 0 to 5.5, so that scores fall inside 1-10 and the clip does not hide them.
        slope = seq(torch.eye(hidden)) - seq(torch.zeros(1, hidden))
        seq[8].weight.mul_(4.0 / slope.norm())
        seq[8].bias.add_(5.5 - seq(torch.zeros(1, hidden)).item())
    return {f"scoring_head.{k}": v for k, v in seq.state_dict().items()}


def _images(root: Path) -> list[Path]:
    """Non-square RGB, RGBA with soft transparency, a palette with a transparent index, a
    small grey picture (upscaled), and an exact-size one (no resampling)."""
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:171, 0:300]
    smooth = np.stack([xx % 256, yy * 1.4 % 256, (xx + yy) % 256], -1).astype(np.uint8)
    noisy = np.clip(smooth + rng.integers(-40, 40, smooth.shape), 0, 255).astype(np.uint8)
    paths = []
    path = root / "wide.png"
    Image.fromarray(noisy).save(path)
    paths.append(path)
    rgba = np.concatenate([noisy[:, :200], (yy[:, :200] * 1.5 % 256)[..., None]], -1)
    path = root / "rgba.png"
    Image.fromarray(rgba.astype(np.uint8).transpose(1, 0, 2), "RGBA").save(path)
    paths.append(path)
    palette = Image.fromarray(noisy[:150, :90]).quantize(16)
    path = root / "palette.png"
    palette.save(path, transparency=3)
    paths.append(path)
    path = root / "grey.png"
    Image.fromarray(noisy[:60, :90, 0], "L").save(path)
    paths.append(path)
    path = root / "square.png"
    Image.fromarray(noisy[:SIZE, :SIZE]).save(path)
    paths.append(path)
    # over twice the model's input each way: decoded at a reduced JPEG scale if at all
    path = root / "photo.jpg"
    photo = Image.fromarray(np.ascontiguousarray(noisy[::-1, ::-1, ::-1]))
    photo.resize((600, 342), Image.Resampling.BICUBIC).save(path, quality=92)
    paths.append(path)
    return paths


def _no_tokenizer(*args, **kwargs):
    raise AssertionError("the tokenizer was built to embed images")


@pytest.fixture(scope="module")
def compared(tiny: BackboneSettings, tmp_path_factory) -> dict:
    """Both sides on the same files: scoretag's embeddings and V2.5's own, the original's
    scores, and the head import-v25 made."""
    root = tmp_path_factory.mktemp("v25")
    paths = _images(root)
    with pytest.MonkeyPatch.context() as patch:
        # Image embedding never builds the text tokenizer (SigLIP's needs the HF cache).
        for module in (open_clip, open_clip.factory):
            patch.setattr(module, "get_tokenizer", _no_tokenizer)
        backbone = load_backbone(tiny)
        ours, frame = embed_images(paths, profile="demo", home=root / "home", backbone=backbone)
    assert frame["ok"].all(), frame

    config = SiglipVisionConfig(
        hidden_size=WIDTH,
        intermediate_size=3 * WIDTH,
        num_hidden_layers=DEPTH,
        num_attention_heads=HEADS,
        image_size=SIZE,
        patch_size=PATCH,
    )
    vision = SiglipVisionModel(config).eval()
    checkpoint = torch.load(tiny.checkpoint, weights_only=True)
    vision.load_state_dict(hf_state_dict(_trunk(checkpoint), DEPTH), strict=True)
    original = V25(vision).eval()
    state = v25_head_state(WIDTH)
    original.layers.load_state_dict(state)
    source = root / "aesthetic_predictor_v2_5.pth"
    torch.save(state, source)

    # google/siglip-so400m-patch14-384's preprocessor_config.json, at this model's size.
    processor = SiglipImageProcessorPil(
        size={"height": SIZE, "width": SIZE},
        resample=3,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
        rescale_factor=1 / 255,
    )
    pixels = processor(images=[Image.open(p) for p in paths], return_tensors="pt").pixel_values
    with torch.inference_mode():
        theirs = original.embeds(pixels).numpy()
        ratings = original(pixels).squeeze(-1).numpy().astype(np.float64)

    out = root / "v25-head"
    result = CliRunner().invoke(
        cli,
        ["--profile", "demo", "--home", str(root / "home"), "head", "import-v25", str(source)]
        + ["--out", str(out), "--no-register"],
    )
    assert result.exit_code == 0, result.output
    return {
        "paths": paths,
        "pixels": pixels,
        "ours": ours,
        "theirs": theirs,
        "ratings": ratings,
        "head": load_head(out),
        "backbone": backbone,
    }


def test_the_siglip_backbone_has_the_tags_preprocessing_and_siglips_activation(tiny):
    found = identity(tiny)
    assert found == load_backbone(tiny).identity
    assert found.weights == "webli"  # a declared copy of the tag
    assert (found.image_size, found.resize_mode, found.interpolation) == (
        (SIZE, SIZE),
        "squash",
        "bicubic",
    )
    assert found.mean == found.std == (0.5, 0.5, 0.5)
    assert found.activation == weights_lib.GELU_TANH
    assert weights_lib.built_activation(load_backbone(tiny).model) == weights_lib.GELU_TANH


def test_scoretag_gives_the_model_siglips_pixels(compared):
    """Decoding (transparency on white, palette, grey, a JPEG) and the squash resize, then
    1/255 and mean/std as encode.py does them: SiglipImageProcessor's pixels."""
    backbone = compared["backbone"]
    geometry = Geometry.of(backbone.identity)
    ours = np.stack(
        [
            geometry.apply(decode(read_bytes(p), DEFAULT_MAX_PIXELS, geometry.draft_size))
            for p in compared["paths"]
        ]
    )
    scaled = (torch.from_numpy(ours).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.5
    assert (scaled - compared["pixels"]).abs().max().item() < 1e-6


def test_scoretag_embeds_what_v25_feeds_its_head(compared):
    theirs = compared["theirs"]
    # The model alone, in float32 on the same pixels: V2.5's normalised pooled output.
    with torch.inference_mode():
        model = compared["backbone"].model.encode_image(compared["pixels"])
    model = nn.functional.normalize(model, dim=-1).numpy()
    assert np.abs(model - theirs).max() < 1e-6
    # The whole path (files in, the store's fp16 vectors out).
    ours = compared["ours"].astype(np.float32)
    cosine = np.sum(ours * theirs, axis=1) / np.linalg.norm(ours, axis=1)
    assert cosine.min() > 0.99999, cosine
    np.testing.assert_allclose(ours, theirs, atol=1e-3, rtol=0)  # fp16's rounding
    # and the pictures are told apart, or the comparison would prove little
    off_diagonal = (theirs @ theirs.T)[~np.eye(len(theirs), dtype=bool)]
    assert off_diagonal.max() < 0.99


def test_the_imported_v25_head_scores_as_the_original(compared):
    head, ratings = compared["head"], compared["ratings"]
    assert head.card["head_type"] == "v25"
    assert ratings.min() > 1.5 and ratings.max() < 9.5 and np.ptp(ratings) > 0.5
    want = (ratings - 1) / 9
    # On V2.5's own features: the head itself, within 1e-5 on the [0, 1] scale.
    on_theirs = head.predict(compared["theirs"]).astype(np.float64)
    np.testing.assert_allclose(on_theirs, want, atol=1e-5, rtol=0)
    # On scoretag's stored embeddings of the same files: the whole path. What is left is the
    # store's fp16 rounding: the same rounding of V2.5's own features scores the same.
    on_ours = head.predict(compared["ours"]).astype(np.float64)
    rounded = head.predict(compared["theirs"].astype(np.float16)).astype(np.float64)
    np.testing.assert_allclose(on_ours, rounded, atol=1e-5, rtol=0)
    np.testing.assert_allclose(on_ours, want, atol=5e-5, rtol=0)


def test_timms_exact_gelu_would_not_be_the_network(compared, tiny):
    """timm's SigLIP as open_clip builds it (exact GELU) is measurably further from V2.5's
    features than scoretag's backbone: the comparison above would catch its return."""
    model = open_clip.create_model(MODEL, pretrained=tiny.checkpoint, weights_only=True).eval()
    assert weights_lib.built_activation(model.visual) == weights_lib.GELU
    with torch.inference_mode():
        exact = nn.functional.normalize(model.encode_image(compared["pixels"]), dim=-1)
    assert np.abs(exact.numpy() - compared["theirs"]).max() > 1e-5


def test_the_so400m_384_webli_layout_maps_onto_v25s_siglip(tmp_path):
    copy = tmp_path / "open_clip_model.safetensors"
    copy.write_bytes(b"")  # identity() does not read it: a declared copy only has to exist
    for settings in (
        BackboneSettings(model=SO400M, pretrained="webli"),
        BackboneSettings(model=SO400M, pretrained="webli", checkpoint=str(copy)),
    ):
        found = identity(settings)
        assert found.embed_dim == 1152 and found.image_size == (384, 384)
        assert found.mean == found.std == (0.5, 0.5, 0.5)
        assert (found.interpolation, found.resize_mode) == ("bicubic", "squash")
        assert found.activation == weights_lib.GELU_TANH and found.weights == "webli"

    with torch.device("meta"):
        model = open_clip.create_model(SO400M, device="meta")
        vision = SiglipVisionModel(SiglipVisionConfig(**SO400M_HF))
    assert vision.config.hidden_act == "gelu_pytorch_tanh"  # what the tanh GELU matches
    trunk = _trunk(model.state_dict())
    mapped = hf_state_dict(trunk, SO400M_HF["num_hidden_layers"])
    wanted = {k: tuple(v.shape) for k, v in vision.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in mapped.items()} == wanted
    # every tensor of the image tower is used (the fused ones twice over, split or joined)
    used = {k for k in trunk if not k.startswith("head.")}
    assert sum(v.numel() for v in mapped.values()) == sum(trunk[k].numel() for k in used)


def test_a_v25_head_imports_for_the_so400m_space_and_activates_there(tmp_path):
    source = tmp_path / "aesthetic_predictor_v2_5.pth"
    state = {k: v.to(torch.bfloat16) for k, v in v25_head_state(1152).items()}
    torch.save(state, source)
    home, out = tmp_path / "home", tmp_path / "v25"
    result = CliRunner().invoke(
        cli,
        ["--profile", "demo", "--home", str(home), "head", "import-v25", str(source)]
        + ["--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    head = load_head(out)
    assert head.version in result.output and "v25" in result.output
    card = head.card
    assert card["input_dim"] == 1152 and card["labels"] is None
    assert card["scale"] == {"source": [1, 10], "to_unit": "(s - 1) / 9, clipped to [0, 1]"}
    assert card["license"].startswith("AGPL-3.0")
    so400m = identity(BackboneSettings(model=SO400M, pretrained="webli"))
    assert card["backbone"] == json.loads(json.dumps(asdict(so400m)))
    require_backbone(head, asdict(so400m))  # activates on that backbone
    # bfloat16 weights widen exactly: the imported head is the file's head
    assert torch.equal(head.net.linears[0].weight, state["scoring_head.0.weight"].float())


def test_siglips_tokenizer_missing_offline_is_a_clear_error(tmp_path):
    """Prompts (CLIPScore) need SigLIP's Hugging Face tokenizer: offline, with an empty cache,
    the error names it and how to fetch it."""
    code = (
        "from assets.evaluation.cache import text_tokenizer\n"
        "try:\n    text_tokenizer('ViT-B-16-SigLIP')\n"
        "except RuntimeError as e:\n    print(e)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parents[2],
    )
    assert "'timm/ViT-B-16-SigLIP'" in done.stdout, done.stdout + done.stderr
    assert "hf download timm/ViT-B-16-SigLIP" in done.stdout
    assert "Image embeddings do not need it" in done.stdout
