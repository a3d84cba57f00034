"""Vectors of evaluation images and of their prompts, cached by content in the backbone's store.

An image is keyed by the sha256 of its bytes, a prompt by the sha256 of its UTF-8 text, in
sections of the backbone's folder of their own (`evaluations/`, `prompts/`; see
assets/embeddings/store.py): the same picture in two sets, or a set scored again under a new
head, costs no embedding, and nothing reading the posts' shards ever sees these vectors.
Images that could not be decoded are recorded as the store records a raw file's failures, so
they are not tried again either.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import numpy as np
import polars as pl
import torch

from assets.embeddings.embed import Plan, Progress, embed
from assets.embeddings.store import EmbeddingStore
from orchestration.backbone import Backbone, Identity
from orchestration.objectstore import Location

IMAGES_SECTION = "evaluations"
PROMPTS_SECTION = "prompts"
TEXT_BATCH = 256


def image_cache(
    stage_dir: str | Location, identity: Identity, provenance: dict[str, str] | None = None
) -> EmbeddingStore:
    return EmbeddingStore(stage_dir, identity, provenance, section=IMAGES_SECTION)


def prompt_cache(
    stage_dir: str | Location, identity: Identity, provenance: dict[str, str] | None = None
) -> EmbeddingStore:
    return EmbeddingStore(stage_dir, identity, provenance, section=PROMPTS_SECTION)


def partition(name: str) -> str:
    """A set's partition in a section (the store keeps two folder levels per partition)."""
    return f"sets/{name}"


def prompt_keys(prompts: pl.Series) -> pl.Series:
    """Each prompt's key: the sha256 of its UTF-8 text (null stays null)."""
    return prompts.map_elements(
        lambda text: hashlib.sha256(text.encode()).hexdigest(), return_dtype=pl.String
    ).alias("prompt_key")


def missing_images(images: pl.DataFrame, store: EmbeddingStore) -> pl.DataFrame:
    """The set's images (one per sha256) neither embedded nor failed before: LOCATION rows
    keyed by sha256, in file order."""
    known = pl.concat([store.keys(), store.failures()["image_key"]]).to_frame("image_key")
    return (
        images.unique("sha256", keep="first", maintain_order=True)
        .select(
            image_key="sha256", path="path", offset="offset", length="length", file_ext="file_ext"
        )
        .join(known, on="image_key", how="anti")
        .sort("path", "offset")
    )


def embed_images(
    todo: pl.DataFrame,
    backbone: Backbone,
    store: EmbeddingStore,
    name: str,
    plan: Plan,
    on_batch: Callable[[Progress], None] = lambda p: None,
) -> Progress:
    """Embed `todo` (from missing_images) into the set's partition; the images that fail are
    added to the partition's failures, which keep every earlier one."""
    store.ensure()
    progress, failures = embed(todo, backbone, store, partition(name), plan, on_batch)
    earlier = store.partition_failures(partition(name))
    store.write_failures(partition(name), pl.concat([earlier, failures]))
    return progress


def text_tokenizer(model: str) -> Callable:
    """open_clip's tokenizer for `model`. SigLIP's is a Hugging Face tokenizer
    (`hf_tokenizer_name`), which needs the `transformers` package and its files from the Hub
    or the Hugging Face cache: only text needs it (image embedding never builds it), and
    where it cannot be had the error says what to install or fetch."""
    import open_clip

    config = open_clip.get_model_config(model) or {}
    hf_name = (config.get("text_cfg") or {}).get("hf_tokenizer_name")
    try:
        return open_clip.get_tokenizer(model)
    except Exception as e:  # ImportError, OSError, or the Hub's own errors: all one answer
        if not hf_name:
            raise
        raise RuntimeError(
            f"{model}'s text tower needs the Hugging Face tokenizer {hf_name!r}, which could "
            f"not be loaded ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). "
            f"It needs `pip install transformers` and its files: online they are fetched "
            f"once; offline (HF_HUB_OFFLINE=1) fill the Hugging Face cache first with "
            f"`hf download {hf_name}`. Image embeddings do not need it; prompts (CLIPScore) do."
        ) from e


class PromptEncoder:
    """The backbone's text tower: prompts in, unit fp16 vectors out (CLIP truncates each
    prompt to its context length, 77 tokens for OpenAI's models)."""

    def __init__(self, backbone: Backbone):
        self.backbone = backbone
        self.tokenizer = text_tokenizer(backbone.identity.model)

    @torch.inference_mode()
    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        device = torch.device(self.backbone.device)
        tokens = self.tokenizer(list(texts)).to(device)
        dtype = self.backbone.autocast
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            features = self.backbone.model.encode_text(tokens)
        features = torch.nn.functional.normalize(features.float(), dim=-1)
        return features.half().cpu().numpy()


def missing_prompts(prompts: pl.Series, store: EmbeddingStore) -> pl.DataFrame:
    """The distinct prompts (`prompt`, `prompt_key`) not embedded yet."""
    distinct = prompts.drop_nulls().unique(maintain_order=True).to_frame("prompt")
    keyed = distinct.with_columns(prompt_keys(distinct["prompt"]))
    return keyed.join(store.keys().to_frame("prompt_key"), on="prompt_key", how="anti")


def embed_prompts(todo: pl.DataFrame, backbone: Backbone, store: EmbeddingStore, name: str) -> int:
    """Embed `todo` (from missing_prompts) into the set's partition: one shard."""
    if todo.height == 0:
        return 0
    encoder = PromptEncoder(backbone)
    texts = todo["prompt"].to_list()
    vectors = np.concatenate(
        [encoder(texts[i : i + TEXT_BATCH]) for i in range(0, len(texts), TEXT_BATCH)]
    )
    store.ensure().write_shard(partition(name), todo["prompt_key"].to_list(), vectors)
    return todo.height


def aligned(store: EmbeddingStore, keys: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """The float32 vectors of `keys` in their order, and which of them were found (a key
    without a vector, or null, gets a row of zeros and False)."""
    found, vectors = store.lookup(keys)
    position = (
        pl.DataFrame({"key": keys})
        .with_row_index("at")
        .join(pl.DataFrame({"key": found, "row": np.arange(found.len())}), on="key", how="inner")
    )
    out = np.zeros((keys.len(), store.identity.embed_dim), np.float32)
    at, rows = position["at"].to_numpy(), position["row"].to_numpy()
    out[at] = vectors[rows]
    hit = np.zeros(keys.len(), bool)
    hit[at] = True
    return out, hit


def clip_scores(image_vectors: np.ndarray, prompt_vectors: np.ndarray) -> np.ndarray:
    """CLIPScore (Hessel et al., 2021): 2.5 * max(cos(image, prompt), 0), row by row, of unit
    vectors. The factor of 2.5 is the paper's, to spread the scores over about [0, 1]."""
    cosine = np.einsum("ij,ij->i", image_vectors, prompt_vectors)
    return 2.5 * np.maximum(cosine, 0.0)
