"""A simulated labeler, so the demo can be rated without a person.

It rates an image from its known degradation (quality 5 = pristine ... 1 = heavily degraded)
plus its own bias and noise. Its name always starts with "simulated", and so does every label
it gives, wherever that label appears.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SimulatedLabeler:
    name: str = "simulated"
    noise: float = 0.6  # standard deviation, in label steps
    bias: float = 0.0  # a harsh (< 0) or lenient (> 0) rater
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.name.startswith("simulated"):
            raise ValueError(
                f"a simulated labeler's name must start with 'simulated': {self.name!r}"
            )

    def rate(self, md5s: Sequence[str], quality: Sequence[int], attempt: int = 0) -> np.ndarray:
        """Labels 1-5 for these images. The same image, attempt and labeler give the same
        label; another attempt (a hidden repeat) draws fresh noise, as a person would."""
        me = zlib.crc32(self.name.encode())
        draws = np.array(
            [
                np.random.default_rng([self.seed, me, attempt, int(md5, 16)]).standard_normal()
                for md5 in md5s
            ]
        )
        raw = np.asarray(quality, dtype=float) + self.bias + self.noise * draws
        return np.clip(np.rint(raw), 1, 5).astype(np.int64)


PANEL: tuple[SimulatedLabeler, ...] = (
    SimulatedLabeler("simulated-steady", noise=0.45),
    SimulatedLabeler("simulated-harsh", noise=0.6, bias=-0.35),
    SimulatedLabeler("simulated-lenient", noise=0.7, bias=0.3),
)
"""Three labelers who disagree a little, so agreement statistics have something to measure."""
