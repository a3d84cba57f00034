"""CLIP score of an evaluation set equals open_clip's own image-text similarity (issue 20).

The backbone is OpenAI's ViT-B/32 network (ViT-B-32 with QuickGELU, as
`open_clip.get_pretrained_cfg("ViT-B-32", "openai")` says its weights need) on seeded random
values, saved as an fp16 safetensors state dict and loaded through the project's real
local-weights path (`pretrained="openai"` beside a `checkpoint`), as
tests/embeddings/test_vit_l14_openai.py does for ViT-L-14. The reference is open_clip alone:
its own eval transform on each PIL image, its own tokenizer, `encode_image`/`encode_text`.

The network is built twice in the module, once per side: open_clip's reference (which also
draws the weights) and the project's backbone.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import open_clip
import polars as pl
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from assets.embeddings.embed import Plan
from assets.evaluation import cache
from assets.evaluation.evaluate import Caches, Evaluation, evaluate_set
from assets.head.registry import Registry
from orchestration.backbone import Backbone, load_backbone
from orchestration.settings import BackboneSettings
from tests.evaluation.conftest import PROMPTS, SEEDS, head_for, write_set

MODEL = "ViT-B-32"
PLAN = Plan(batch_size=8, workers=0)
# The weights file, and open_clip's own model holding them with its eval transform.
Reference = tuple[Path, torch.nn.Module, Callable[[Image.Image], torch.Tensor]]

# Tolerance on a cosine of two unit vectors. The project stores both vectors in fp16, whose
# rounding moves each component by at most 2**-11 of itself: by Cauchy-Schwarz a dot product
# moves by at most 2**-11 * sum|a_i||b_i| <= 2**-11 per rounded vector, 2**-10 ~ 9.8e-4 for
# the pair. test_vit_l14_openai.py allows 5e-3 per embedding component for fp16 and
# resampling rounding, but summed over 512 components that bounds nothing useful; here the
# pixels should not differ at all (Geometry resizes the uint8 picture with PIL exactly as
# torchvision's Resize does a PIL image: tests/embeddings/test_preprocess.py), so only ~5e-4
# is added for float32 summation order. Measured: 2.6e-5. (This is no check of the
# interpolation: bilinear for bicubic moves these cosines by only 3.5e-4; squashing instead
# of cropping moves them by 7.8e-3.)
COSINE_ATOL = 1.5e-3
# CLIPScore is 2.5 * max(cos, 0), and max(., 0) is 1-Lipschitz: 2.5 times the cosine's.
SCORE_ATOL = 2.5 * COSINE_ATOL


def shared_direction(model: torch.nn.Module, scale: float = 0.5) -> None:
    """Give both towers' outputs one common component, through their final LayerNorm biases.

    Random towers send images and texts to unrelated directions: their cosines are about
    +-0.04 and here mostly negative, so CLIPScore would clip nearly all of them to 0 on both
    sides and compare nothing. A text bias `b_t` adds `b_t @ text_projection` to every text
    vector; the image bias solving `b_v @ visual.proj = b_t @ text_projection` (768 unknowns,
    512 equations) adds the same vector to every image vector. At this scale the cosines
    come out about 0.15-0.25 (trained CLIP's CLIPScore range), and still differ by image and
    prompt by a few hundredths, as the random network makes them."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        text_bias = scale * torch.randn(model.ln_final.bias.shape, generator=generator)
        common = text_bias @ model.text_projection
        image_bias = torch.linalg.lstsq(model.visual.proj.T, common[:, None]).solution[:, 0]
        model.ln_final.bias.add_(text_bias)
        model.visual.ln_post.bias.add_(image_bias)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """The random weights file, and open_clip's own model and eval transform holding them.

    open_clip's `create_model_and_transforms(name, pretrained=<file>)` builds the network and
    then calls `open_clip.load_checkpoint(model, file, strict=True)`; this does the same
    two steps on the one model that drew the weights, so the module builds it once here."""
    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms(MODEL, force_quick_gelu=True)
    shared_direction(model)
    path = tmp_path_factory.mktemp("vit-b-32") / "vit-b-32-openai.safetensors"
    save_file({k: v.detach().half().contiguous() for k, v in model.state_dict().items()}, path)
    # The model now holds the file's fp16-rounded values, exactly as a fresh load would.
    open_clip.load_checkpoint(model, str(path), strict=True, weights_only=True)
    return path, model.eval(), preprocess


@pytest.fixture(scope="module")
def settings(reference: Reference) -> BackboneSettings:
    return BackboneSettings(
        model=MODEL, pretrained="openai", checkpoint=str(reference[0]), device="cpu",
        precision="fp32",
    )  # fmt: skip


@pytest.fixture(scope="module")
def backbone(settings: BackboneSettings) -> Backbone:
    loaded = load_backbone(settings)
    assert loaded.identity.activation == "quick_gelu" and loaded.identity.weights == "openai"
    return loaded


def open_clip_text(reference: Reference, texts: list[str]) -> np.ndarray:
    """open_clip's unit text vectors (float32) of `texts`."""
    _, model, _ = reference
    tokens = open_clip.get_tokenizer(MODEL)(texts)
    with torch.inference_mode():
        return torch.nn.functional.normalize(model.encode_text(tokens).float(), dim=-1).numpy()


def open_clip_images(reference: Reference, paths: list[Path]) -> np.ndarray:
    """open_clip's unit image vectors (float32): its own transform on each PIL image."""
    _, model, preprocess = reference
    batch = torch.stack([preprocess(Image.open(p).convert("RGB")) for p in paths])
    with torch.inference_mode():
        return torch.nn.functional.normalize(model.encode_image(batch).float(), dim=-1).numpy()


@pytest.fixture(scope="module")
def evaluated(
    tmp_path_factory: pytest.TempPathFactory, settings: BackboneSettings, backbone: Backbone
) -> tuple[Path, Caches, Evaluation]:
    """A set of 12 pictures (3 prompts x 4 seeds) evaluated once with the ViT-B-32 backbone."""
    tmp = tmp_path_factory.mktemp("clip-score")
    root = write_set(tmp / "set")
    caches = Caches.at(tmp / "embeddings", backbone.identity, backbone.provenance)
    head = head_for(Registry(tmp / "heads"), settings, 0)
    done = evaluate_set("set", root, caches, lambda: backbone, PLAN, [head], {}, 7)
    assert done.images.height == len(PROMPTS) * len(SEEDS) and done.failures.height == 0
    return root, caches, done


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (no ties expected among float cosines)."""
    ranks = [np.argsort(np.argsort(x.ravel())).astype(float) for x in (a, b)]
    return float(np.corrcoef(*ranks)[0, 1])


def test_clip_scores_and_cosines_equal_open_clips_own(
    evaluated: tuple[Path, Caches, Evaluation], reference: Reference
) -> None:
    root, caches, done = evaluated
    images = done.images
    prompts = list(PROMPTS)
    # open_clip's cosines of every image with every prompt: (12, 3).
    want_images = open_clip_images(reference, [root / s for s in images["source"]])
    want_prompts = open_clip_text(reference, prompts)
    want = want_images @ want_prompts.T
    # Its CLIPScore of each image against its own prompt.
    own = np.array([prompts.index(p) for p in images["prompt"]])
    want_own = want[np.arange(images.height), own]
    np.testing.assert_allclose(
        images["clip_score"].to_numpy(), 2.5 * np.maximum(want_own, 0), rtol=0, atol=SCORE_ATOL
    )

    # The clipped scores hide negative cosines: compare the cached vectors' cosines too.
    image_vectors, found = cache.aligned(caches.images, images["sha256"])
    prompt_vectors, has = cache.aligned(caches.prompts, cache.prompt_keys(pl.Series(prompts)))
    assert found.all() and has.all()
    # The vectors themselves: fp16 rounding moves each component by at most 2**-11 of it
    # (doubled for float32 summation order), the tiniest by fp16's subnormal spacing.
    np.testing.assert_allclose(image_vectors, want_images, rtol=2**-10, atol=1e-6)
    np.testing.assert_allclose(prompt_vectors, want_prompts, rtol=2**-10, atol=1e-6)
    got = image_vectors @ prompt_vectors.T
    np.testing.assert_allclose(got, want, rtol=0, atol=COSINE_ATOL)
    # ...and the cosines are far from 0 and spread, so a mismatch could not hide in the clip.
    assert np.abs(want).max() > 20 * COSINE_ATOL and np.ptp(want) > 20 * COSINE_ATOL
    assert (want_own > 0.1).all()  # no score clipped: every one compared

    # The ranking of the prompts is open_clip's: the best prompt of each image where the
    # margin over the runner-up is clear of the tolerance, and the order of all 36 pairs.
    ordered = np.sort(want, axis=1)
    clear = ordered[:, -1] - ordered[:, -2] > 2 * COSINE_ATOL
    assert clear.sum() >= len(SEEDS)
    np.testing.assert_array_equal(got.argmax(1)[clear], want.argmax(1)[clear])
    assert spearman(got, want) > 0.99


def test_a_long_prompt_is_truncated_as_open_clips_tokenizer_does(
    backbone: Backbone, reference: Reference
) -> None:
    words = ["red", "house", "dusk", "cat", "sofa", "mountain", "lake", "sky"]
    long = " ".join(words[i % len(words)] for i in range(200))
    tokens = open_clip.get_tokenizer(MODEL)([long])
    assert tokens.shape == (1, 77) and (tokens != 0).all()  # cut to the context length
    # The same prompt with another tail past the context, in the same batch.
    ours, tail = cache.PromptEncoder(backbone)([long, long + " banana" * 50]).astype(np.float32)
    want = open_clip_text(reference, [long])[0]
    # An fp16-rounded unit vector against float32, as the set's vectors above (measured:
    # relative 4.5e-4).
    np.testing.assert_allclose(ours, want, rtol=2**-10, atol=1e-6)
    # What lies past the context does not count: the other tail gives the same vector (had
    # the tail counted, the end-of-text token pooled would be another, the vector unrelated).
    np.testing.assert_allclose(tail, ours, rtol=2**-10, atol=1e-6)


def test_clip_score_is_two_and_a_half_times_the_cosine_clipped_at_zero() -> None:
    # Unit vectors at cosines 0.4 and -0.3 with the first axis, in 4 dimensions.
    cos = np.array([0.4, -0.3])
    images = np.zeros((2, 4))
    images[:, 0] = 1.0
    prompts = np.zeros((2, 4))
    prompts[:, 0], prompts[:, 1] = cos, np.sqrt(1 - cos**2)
    np.testing.assert_allclose(np.linalg.norm(prompts, axis=1), 1.0)
    np.testing.assert_allclose(cache.clip_scores(images, prompts), [1.0, 0.0], atol=1e-12)
