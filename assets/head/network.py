"""The head as a network: a stack of Linear layers, each followed by an activation or none,
then an affine map of the last output onto the [0, 1] quality scale, clipped.

One description covers every head scoretag writes or imports: ridge (one Linear), an MLP
(Linear + GELU + dropout, ...), and LAION's improved aesthetic predictor (five Linear layers,
with or without ReLU, whose 1-10 output maps to [0, 1] by (s - 1) / 9).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

ACTIVATIONS = {"none": nn.Identity, "relu": nn.ReLU, "gelu": nn.GELU}


@dataclass(frozen=True)
class Architecture:
    """`dims`: input dim, then each Linear layer's output dim (the last is 1); `activations`:
    one per Linear layer (the last is normally "none"); `dropout` after each hidden
    activation (training only); the score is clip(out * scale + shift, 0, 1)."""

    dims: tuple[int, ...]
    activations: tuple[str, ...]
    dropout: float = 0.0
    scale: float = 1.0
    shift: float = 0.0

    def __post_init__(self) -> None:
        if len(self.dims) < 2 or self.dims[-1] != 1:
            raise ValueError(f"a head maps an embedding to one number: dims {self.dims}")
        if len(self.activations) != len(self.dims) - 1:
            raise ValueError("one activation per Linear layer is needed")
        unknown = set(self.activations) - set(ACTIVATIONS)
        if unknown:
            raise ValueError(f"unknown activations {sorted(unknown)}: use {sorted(ACTIVATIONS)}")

    @property
    def input_dim(self) -> int:
        return self.dims[0]

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> Architecture:
        return cls(
            dims=tuple(int(d) for d in data["dims"]),
            activations=tuple(data["activations"]),
            dropout=float(data.get("dropout", 0.0)),
            scale=float(data.get("scale", 1.0)),
            shift=float(data.get("shift", 0.0)),
        )


class HeadNet(nn.Module):
    """The network an Architecture describes. `linears` holds the weights (saved as
    `linears.<i>.weight` / `.bias`); `forward` gives the raw output, `score` the [0, 1] one."""

    def __init__(self, arch: Architecture):
        super().__init__()
        self.arch = arch
        self.linears = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(arch.dims[:-1], arch.dims[1:], strict=True)
        )
        self.acts = nn.ModuleList(ACTIVATIONS[a]() for a in arch.activations)
        self.drop = nn.Dropout(arch.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.linears) - 1
        for i, (linear, act) in enumerate(zip(self.linears, self.acts, strict=True)):
            x = act(linear(x))
            if i < last:
                x = self.drop(x)
        return x.squeeze(-1)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Quality in [0, 1] of L2-normalised embeddings."""
        return (self.forward(x) * self.arch.scale + self.arch.shift).clamp(0.0, 1.0)


def l2_normalize(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x.float(), dim=-1)
