"""Target transforms for the head: what it learns in place of the label-scale quality, and how
its predictions come back to that scale.

`"none"`: the quality itself (label 1 -> 0, label 5 -> 1).

`"rankgauss"`, as Aesthetic Predictor V2.5 preprocessed its targets: rank the training
targets (ties share their average rank), scale the ranks into (-1, 1) with a margin, and
apply the inverse error function, so the targets are Gaussian. The margin is the Hazen
plotting position's, u = (2r - 1) / n - 1 for average rank r of n, and u is scaled by √2
after erfinv: each distinct target lands on the standard normal quantile of its rank's
midpoint, whatever n (a fixed margin would put the extremes of a small set past ±2.5).

The distinct training targets and their normal quantiles are the transform's knots; any
other value maps by linear interpolation between them, which is monotone. The head does not
learn the normal quantiles themselves but their affine image on [0, 1] (the lowest knot at 0,
the highest at 1: `encode`): still Gaussian-shaped, but on the scale the head's
hyper-parameters (learning rate, weight decay) and its [0, 1] output clamp were made for.
`decode` is the inverse: a head's output back onto the label scale, clamped to the range of
the training targets (the network's own clamp to [0, 1] is exactly that range).

Fitted on training targets only: a fold's transform sees that fold's training targets, never
the held-out ones. Plain numpy/scipy, no Dagster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import ArrayLike
from scipy import special, stats

TargetKind = Literal["none", "rankgauss"]
TARGET_TRANSFORMS: tuple[TargetKind, ...] = ("none", "rankgauss")
# Targets closer than this are one knot: mean labels come out of float arithmetic slightly
# off (10/3 against 3.3333333333333335), as in metrics.LABEL_DECIMALS.
KNOT_DECIMALS = 9


class TargetTransform(Protocol):
    """What training needs of a transform: qualities to what the head learns, and back."""

    kind: TargetKind

    def encode(self, y: ArrayLike) -> np.ndarray: ...

    def decode(self, s: ArrayLike) -> np.ndarray: ...

    def to_dict(self) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class Identity:
    """`"none"`: the head learns the quality itself. Encode and decode give their input back
    unchanged (the same array), so a head without a transform is the head it always was."""

    kind: TargetKind = "none"

    def encode(self, y: ArrayLike) -> np.ndarray:
        return np.asarray(y)

    def decode(self, s: ArrayLike) -> np.ndarray:
        return np.asarray(s)

    def to_dict(self) -> None:
        return None


@dataclass(frozen=True)
class RankGauss:
    """A fitted RankGauss transform: `levels`, the distinct training targets ascending (label
    scale, qualities in [0, 1]), and `gauss`, their standard normal scores (ascending too)."""

    levels: np.ndarray
    gauss: np.ndarray
    kind: TargetKind = "rankgauss"

    def __post_init__(self) -> None:
        levels, gauss = np.asarray(self.levels, np.float64), np.asarray(self.gauss, np.float64)
        if levels.ndim != 1 or levels.shape != gauss.shape or not levels.size:
            raise ValueError("rankgauss needs one Gaussian value per level, and a level")
        if np.any(np.diff(levels) <= 0) or np.any(np.diff(gauss) <= 0):
            raise ValueError("rankgauss knots must be strictly increasing")
        object.__setattr__(self, "levels", levels)
        object.__setattr__(self, "gauss", gauss)

    def forward(self, y: ArrayLike) -> np.ndarray:
        """Qualities to standard normal scores: exact on the knots, interpolated between."""
        return np.interp(np.asarray(y, np.float64), self.levels, self.gauss)

    def inverse(self, z: ArrayLike) -> np.ndarray:
        """Normal scores back to qualities, by linear interpolation between the knots
        (monotone); past the end knots, the lowest or highest training target."""
        return np.interp(np.asarray(z, np.float64), self.gauss, self.levels)

    @property
    def _span(self) -> tuple[float, float]:
        low, high = float(self.gauss[0]), float(self.gauss[-1])
        # one level (every training target equal): nothing to spread; it encodes as 0
        return low, (high - low) or 1.0

    def encode(self, y: ArrayLike) -> np.ndarray:
        """What the head learns: the normal scores mapped affinely onto [0, 1]."""
        low, span = self._span
        return (self.forward(y) - low) / span

    def decode(self, s: ArrayLike) -> np.ndarray:
        """A head's output (in [0, 1], or past it: clamped) back on the label scale."""
        low, span = self._span
        return self.inverse(low + np.asarray(s, np.float64) * span)

    def to_dict(self) -> dict[str, Any]:
        """The knots as the head's card keeps them (JSON floats round-trip exactly)."""
        return {
            "kind": self.kind,
            "levels": [float(v) for v in self.levels],
            "gauss": [float(v) for v in self.gauss],
        }


def rankgauss(y: ArrayLike) -> RankGauss:
    """The RankGauss transform fitted on training targets `y` (qualities in [0, 1])."""
    values = np.round(np.asarray(y, np.float64).ravel(), KNOT_DECIMALS)
    if not values.size or not np.all(np.isfinite(values)):
        raise ValueError("rankgauss needs finite training targets, at least one")
    ranks = stats.rankdata(values, method="average")  # ties: the same (average) rank
    levels, first = np.unique(values, return_index=True)
    u = (2.0 * ranks[first] - 1.0) / values.size - 1.0  # in (-1, 1): the Hazen margin
    return RankGauss(levels=levels, gauss=np.sqrt(2.0) * special.erfinv(u))


def fit_transform(kind: str, y: ArrayLike) -> TargetTransform:
    """The transform `kind` fitted on the training targets `y`."""
    if kind == "none":
        return Identity()
    if kind == "rankgauss":
        return rankgauss(y)
    raise ValueError(f"target_transform {kind!r}: use one of {TARGET_TRANSFORMS}")


def from_dict(data: dict[str, Any] | None) -> TargetTransform:
    """A transform as a card keeps it (None or absent: none)."""
    if not data:
        return Identity()
    if data.get("kind") == "rankgauss":
        return RankGauss(levels=np.asarray(data["levels"]), gauss=np.asarray(data["gauss"]))
    raise ValueError(f"unknown target transform on the card: {data.get('kind')!r}")
