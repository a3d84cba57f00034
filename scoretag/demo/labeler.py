"""A simulated labeler, so the demo can be rated without a person.

It rates an image from its known degradation (quality 5 = pristine ... 1 = heavily degraded)
plus its own bias and noise, and compares two images the same way (each perceived as its
quality plus fresh noise). Its name always starts with "simulated", and so does every label or
pair choice it gives, wherever it appears.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

TIE = 0.25  # label steps: two perceptions closer than this are a tie


@dataclass(frozen=True)
class SimulatedLabeler:
    name: str = "simulated"
    noise: float = 0.6  # standard deviation, in label steps
    bias: float = 0.0  # a harsh (< 0) or lenient (> 0) rater
    seed: int = 0
    # compare mode: added to the left image's perception, in label steps (> 0: a lean to the
    # left, felt only when the two images look close)
    position_bias: float = 0.0

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

    def compare(
        self,
        md5_a: str,
        md5_b: str,
        quality_a: int | None,
        quality_b: int | None,
        attempt: int = 0,
    ) -> Literal["left", "right", "tie", "skip"]:
        """Which of two images, `a` shown left and `b` right, looks better: "left", "right",
        or "tie" when the two perceptions are within TIE label steps; "skip" when either image
        is unusable (its quality None: corrupt, too large).

        Each image is perceived as its quality plus this labeler's noise, a fresh draw per
        side, seeded by the image, the other image and the attempt: the same pair, attempt
        and labeler give the same answer, and another attempt (a hidden repeat) draws afresh.
        The bias moves both sides alike, so it cancels. `position_bias` is added to the left
        side only: a labeler with one picks left a little more often when the images look
        close (a near tie becomes "left", a narrow "right" a tie), which the app's position
        bias statistic measures.
        """
        if quality_a is None or quality_b is None:
            return "skip"
        me = zlib.crc32(self.name.encode())

        def perceived(md5: str, quality: int, other: str) -> float:
            rng = np.random.default_rng([self.seed, me, attempt, int(md5, 16), int(other, 16)])
            return quality + self.bias + self.noise * rng.standard_normal()

        left = perceived(md5_a, quality_a, md5_b) + self.position_bias
        right = perceived(md5_b, quality_b, md5_a)
        if abs(left - right) < TIE:
            return "tie"
        return "left" if left > right else "right"


PANEL: tuple[SimulatedLabeler, ...] = (
    SimulatedLabeler("simulated-steady", noise=0.45),
    SimulatedLabeler("simulated-harsh", noise=0.6, bias=-0.35),
    SimulatedLabeler("simulated-lenient", noise=0.7, bias=0.3, position_bias=0.3),
)
"""Three labelers who disagree a little, so agreement statistics have something to measure;
simulated-lenient also leans left when comparing close pairs (position_bias 0.3 label steps),
so the position bias statistic has something to find."""
