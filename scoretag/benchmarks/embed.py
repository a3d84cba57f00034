"""`scoretag bench embed`: the project's embedding path against a reference loop written like
LAION's `simple_inference.py` (open, preprocess, encode a batch of one, normalise), with the
same model, on the same JPEG files, in the same run.

The images alternate between the demo's drawn illustrations (what boorus mostly hold) and
photos (the skimage samples, with light grain), long sides spread evenly from 256 to 2048 px,
written as quality-90 JPEG.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from orchestration.settings import BackboneSettings
from scoretag.benchmarks.memory import peak_rss_mb

ASPECTS = ((2, 3), (3, 4), (1, 1), (4, 3), (16, 9))
PHOTOS = ("astronaut", "chelsea", "coffee", "immunohistochemistry", "rocket", "retina")


def _photo(photos: list, i: int, size: tuple[int, int], rng: np.random.Generator):
    from PIL import Image

    picture = photos[i % len(photos)].resize(size, Image.Resampling.BILINEAR)
    grain = rng.normal(0, 3, (size[1], size[0], 1)).astype(np.float32)
    return Image.fromarray(
        np.clip(np.asarray(picture, np.float32) + grain, 0, 255).astype(np.uint8)
    )


def write_jpegs(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """`count` JPEG files, long sides from 256 to 2048 px."""
    import skimage.data
    from PIL import Image

    from scoretag.demo.illustrations import MOTIFS, STYLES, draw_illustration

    rng = np.random.default_rng(seed)
    photos = [Image.fromarray(getattr(skimage.data, name)()).convert("RGB") for name in PHOTOS]
    paths = []
    for i, long_side in enumerate(np.linspace(256, 2048, count).round().astype(int).tolist()):
        a, b = ASPECTS[i % len(ASPECTS)]
        size = (long_side, long_side * b // a) if a >= b else (long_side * a // b, long_side)
        if i % 2:
            picture = _photo(photos, i // 2, size, rng)
        else:
            style, motif = STYLES[(i // 2) % len(STYLES)], MOTIFS[(i // 7) % len(MOTIFS)]
            picture = draw_illustration(style, motif, size, rng)
        path = folder / f"{i:05d}.jpg"
        picture.convert("RGB").save(path, "JPEG", quality=90)
        paths.append(path)
    return paths


def reference_transform(identity):
    """open_clip's own evaluation transform for this backbone (PIL resize, crop, to tensor,
    normalise), as `create_model_and_transforms` would return it."""
    import open_clip

    return open_clip.image_transform(
        identity.image_size,
        is_train=False,
        mean=identity.mean,
        std=identity.std,
        resize_mode=identity.resize_mode,
        interpolation=identity.interpolation,
        fill_color=identity.fill_color,
    )


def reference_precision(device: str) -> str:
    """The precision LAION's loop runs at: `clip.load` gives an fp16 model on CUDA (its
    `convert_weights`) and an fp32 one elsewhere."""
    return "fp16" if device.startswith("cuda") else "fp32"


def project_precision(device: str, asked: str) -> str:
    """The project's precision: `auto` is the reference's, so both sides run alike."""
    return reference_precision(device) if asked == "auto" else asked


def reference_model(model, device: str):
    """The model as the reference runs it: an fp16 copy on CUDA, as `clip.load` makes."""
    import copy

    return copy.deepcopy(model).half() if reference_precision(device) == "fp16" else model


def reference_loop(model, preprocess, paths: list[Path], device: str) -> np.ndarray:
    """As LAION's simple_inference.py: one image at a time, no workers, no batching; the
    pixels in the model's dtype (fp16 on CUDA, as CLIP's encode_image casts them)."""
    import torch
    from PIL import Image

    dtype = next(model.parameters()).dtype
    vectors = []
    for path in paths:
        image = preprocess(Image.open(path)).unsqueeze(0).to(device, dtype)
        with torch.no_grad():
            features = model.encode_image(image)
        vectors.append(torch.nn.functional.normalize(features.float(), dim=-1).cpu().numpy())
    return np.concatenate(vectors)


def _project(
    backbone, paths: list[Path], workdir: Path, workers: int, batch_size: int, draft: bool
):
    from assets.embeddings.embed import Plan, embed
    from assets.embeddings.store import EmbeddingStore

    todo = pl.DataFrame(
        {
            "image_key": [p.stem for p in paths],
            "path": [str(p) for p in paths],
            "offset": -1,
            "length": -1,
            "file_ext": "jpg",
        }
    )
    store = EmbeddingStore(workdir, backbone.identity)
    plan = Plan(batch_size=batch_size, workers=workers, jpeg_draft=draft)
    progress, failures = embed(todo, backbone, store, "bench/jpegs", plan)
    keys, vectors = store.read()
    order = pl.DataFrame({"image_key": keys}).with_row_index().sort("image_key")["index"]
    return progress, failures, vectors[order.to_numpy()]


def _warm_up(
    backbone,
    reference,
    preprocess,
    paths: list[Path],
    workdir: Path,
    workers: int,
    batch_size: int,
    draft: bool,
):
    """Both paths run once over a few images before either is timed: imports that happen on
    first use (pyarrow loads pandas on its first table write), kernel selection and allocator
    growth are one-off costs of a process, not of embedding 512 images."""
    few = paths[:: max(1, len(paths) // 8)][:8]
    _project(backbone, few, workdir / "warm-up", workers, batch_size, draft)
    reference_loop(reference, preprocess, few, backbone.device)


def embed_bench(
    model: str = "scoretag-tiny",
    images: int = 512,
    device: str = "cpu",
    precision: str = "auto",
    batch_size: int = 64,
    workers: int | None = None,
    repeats: int = 3,
    seed: int = 0,
    jpeg_draft: bool = False,
) -> dict:
    """Images per second of both paths (the median of `repeats` timings each, taken in
    turns), their ratio, and how close their vectors are. The reference runs in fp16 on CUDA
    (as LAION's `clip.load` does there) and in fp32 elsewhere; `precision="auto"` runs the
    project at the same precision."""
    from assets.embeddings.dataset import resolve_workers
    from orchestration.backbone import load_backbone
    from orchestration.devices import resolve_device

    resolved = resolve_device(device)
    settings = BackboneSettings(
        model=model,
        pretrained="",
        device=resolved,
        precision=project_precision(resolved, precision),
        batch_size=batch_size,
    )
    backbone = load_backbone(settings)
    reference = reference_model(backbone.model, backbone.device)
    preprocess = reference_transform(backbone.identity)
    workers = resolve_workers("auto") if workers is None else workers
    with tempfile.TemporaryDirectory(prefix="scoretag-bench-embed-") as tmp:
        paths = write_jpegs(Path(tmp), images, seed)
        _warm_up(backbone, reference, preprocess, paths, Path(tmp), workers, batch_size, jpeg_draft)
        project_runs, reference_runs = [], []
        for repeat in range(repeats):
            started = time.perf_counter()
            _, failures, vectors = _project(
                backbone, paths, Path(tmp) / f"run-{repeat}", workers, batch_size, jpeg_draft
            )
            project_runs.append(time.perf_counter() - started)
            started = time.perf_counter()
            reference_vectors = reference_loop(reference, preprocess, paths, backbone.device)
            reference_runs.append(time.perf_counter() - started)
    project_s, reference_s = statistics.median(project_runs), statistics.median(reference_runs)
    cosine = (vectors.astype(np.float32) * reference_vectors).sum(axis=1)
    return {
        "bench": "embed",
        "model": model,
        "device": backbone.device,
        "precision": backbone.precision,
        "project_precision": _precision_name(backbone.precision),
        "reference_precision": reference_precision(backbone.device),
        "cores": os.cpu_count(),
        "workers": workers,
        "batch_size": batch_size,
        "images": images,
        "jpeg_draft": jpeg_draft,
        "failed": failures.height,
        "repeats": repeats,
        "project_seconds": round(project_s, 3),
        "reference_seconds": round(reference_s, 3),
        "project_runs_s": [round(t, 3) for t in project_runs],
        "reference_runs_s": [round(t, 3) for t in reference_runs],
        "project_img_per_s": round(images / project_s, 1),
        "reference_img_per_s": round(images / reference_s, 1),
        "ratio": round(reference_s / project_s, 2),
        "cosine_to_reference_mean": round(float(cosine.mean()), 4),
        "cosine_to_reference_min": round(float(cosine.min()), 4),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def _precision_name(precision: str) -> str:
    """A backbone's precision as settings name it (fp32, fp16, bf16)."""
    return {"float16": "fp16", "bfloat16": "bf16"}.get(precision, precision)
