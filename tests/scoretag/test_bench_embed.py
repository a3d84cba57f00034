"""`scoretag bench embed`: each side's precision (chosen without CUDA), and its JSON."""

from __future__ import annotations

import torch

from scoretag.benchmarks.embed import (
    embed_bench,
    project_precision,
    reference_model,
    reference_precision,
)

FIELDS = {
    "bench", "model", "device", "precision", "cores", "workers", "batch_size", "images",
    "failed", "repeats", "project_seconds", "reference_seconds", "project_runs_s",
    "reference_runs_s", "project_img_per_s", "reference_img_per_s", "ratio",
    "cosine_to_reference_mean", "cosine_to_reference_min", "peak_rss_mb", "jpeg_draft",
}  # fmt: skip


def test_the_reference_runs_as_clip_load_does_fp16_on_cuda_only():
    assert reference_precision("cuda") == "fp16"
    assert reference_precision("cuda:3") == "fp16"
    assert reference_precision("cpu") == "fp32"
    assert reference_precision("mps") == "fp32"


def test_auto_runs_the_project_at_the_references_precision():
    assert project_precision("cuda:0", "auto") == "fp16"
    assert project_precision("cpu", "auto") == "fp32"
    assert project_precision("cuda", "bf16") == "bf16"  # asked for: kept


def test_the_reference_model_on_cuda_is_an_fp16_copy():
    model = torch.nn.Linear(4, 2)
    half = reference_model(model, "cuda")
    assert half is not model and next(half.parameters()).dtype == torch.float16
    assert next(model.parameters()).dtype == torch.float32  # the project's model untouched
    assert reference_model(model, "cpu") is model


def test_the_json_says_which_precision_each_side_ran():
    result = embed_bench(images=6, workers=0, repeats=1, batch_size=4)
    assert FIELDS - set(result) == set()
    assert (result["project_precision"], result["reference_precision"]) == ("fp32", "fp32")
    assert result["precision"] == "fp32" and result["failed"] == 0
    # JPEGs decoded whole, as the reference does: the same vectors, but for the store's fp16
    assert result["jpeg_draft"] is False and result["cosine_to_reference_min"] > 0.9999
