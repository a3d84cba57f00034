"""Which device a backbone runs on, and at what precision."""

from __future__ import annotations

from typing import Any


def resolve_device(requested: str) -> str:
    """`auto` is the best accelerator present: CUDA, then Apple's MPS, then the CPU."""
    import torch

    if requested != "auto":
        if requested == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("backbone device 'cuda' was asked for but CUDA is not available")
        if requested == "mps" and not torch.backends.mps.is_available():
            raise RuntimeError("backbone device 'mps' was asked for but MPS is not available")
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def autocast_dtype(precision: str, device: str) -> Any:
    """The dtype to autocast to, or None for fp32. CPUs get bf16 at most: their fp16 matmuls
    are slower than fp32 ones."""
    import torch

    if precision == "fp32":
        return None
    if device == "cpu":
        return torch.bfloat16 if precision == "bf16" else None
    return torch.float16 if precision == "fp16" else torch.bfloat16
