"""Human pairwise judgments as training data: which of two items won (or a tie), their loss
under a Bradley-Terry model with ties, their folds, and how well scores agree with them.

**The tie model is Davidson's (1970).** With strengths π = exp(s / T):

    P(i beats j) = π_i / (π_i + π_j + ν √(π_i π_j)),   P(tie) = ν √(π_i π_j) / (same),

so with d = (s_i - s_j) / T: P(i) = e^{d/2} / Z, P(j) = e^{-d/2} / Z, P(tie) = ν / Z,
Z = e^{d/2} + e^{-d/2} + ν. Why Davidson rather than Rao-Kupper: at ν = 0 it is exactly
Bradley-Terry (P(i) = σ(d)); ties are likeliest between equal items and fade smoothly with the
gap, with no threshold to place; and its likelihood equations count a tie as half a win for
each side, the same half that `accuracy` gives a tie in predicted scores. ν is learnt (as
log ν) beside the weights: the share of ties in the data identifies it.

**The scale T is set, not learnt** ([head] pair_temperature, 0.1 by default): with pairs alone
only the gaps divided by T are identified, so a learnt T would only trade against the weights'
size. Fixed, it pins the head's unit-interval score: a score gap of T means odds of e to 1
between winning and losing (0.1 is 0.4 of a rating step). Pairs say nothing about where the
scale sits, so a head trained on pairs alone is shifted to put its training items' mean score
at 0.5.

Outcomes are coded per pair as 1.0 (the first item won), 0.0 (the second won) or 0.5 (tie).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

WON, LOST, TIE = 1.0, 0.0, 0.5


@dataclass(frozen=True)
class Pairs:
    """Judged pairs over a set of items. `first`/`second` index the items: the rated items of a
    TrainingData first, then the `X` rows here (posts seen only in pairs)."""

    first: np.ndarray  # (p,) int
    second: np.ndarray  # (p,) int
    outcome: np.ndarray  # (p,) float: WON, LOST or TIE (for `first`)
    labelers: np.ndarray  # (p,) str
    X: np.ndarray  # (m, dim) embeddings of the posts only in pairs
    post_keys: np.ndarray  # (m,)
    sites: np.ndarray  # (m,)

    def __len__(self) -> int:
        return len(self.outcome)

    @classmethod
    def over(
        cls,
        first: np.ndarray,
        second: np.ndarray,
        outcome: np.ndarray,
        labelers: np.ndarray | None = None,
    ) -> Pairs:
        """Pairs over items that are all rated (no extra items)."""
        n = len(outcome)
        return cls(
            first=np.asarray(first, np.int64),
            second=np.asarray(second, np.int64),
            outcome=np.asarray(outcome, np.float64),
            labelers=np.full(n, "?") if labelers is None else np.asarray(labelers),
            X=np.zeros((0, 0), np.float32),
            post_keys=np.array([], str),
            sites=np.array([], str),
        )

    def summary(self) -> dict:
        decided = self.outcome != TIE
        labelers, counts = np.unique(self.labelers.astype(str), return_counts=True)
        return {
            "pairs": len(self),
            "ties": int((~decided).sum()),
            "pair_only_items": len(self.post_keys),
            "labelers": {str(name): int(c) for name, c in zip(labelers, counts, strict=True)},
        }


def davidson_nll(
    gap: torch.Tensor, outcome: torch.Tensor, log_nu: torch.Tensor | float
) -> torch.Tensor:
    """Mean -log P(outcome) under Davidson's ties model; `gap` is (s_first - s_second) / T."""
    half = gap / 2
    log_nu = torch.as_tensor(log_nu, dtype=gap.dtype).expand_as(half)
    log_z = torch.logsumexp(torch.stack([half, -half, log_nu]), dim=0)
    chosen = torch.where(outcome == WON, half, torch.where(outcome == LOST, -half, log_nu))
    return (log_z - chosen).mean()


def accuracy(
    scores: np.ndarray, first: np.ndarray, second: np.ndarray, outcome: np.ndarray
) -> dict:
    """The share of non-tie pairs whose winner scores higher (a tie in scores counts 0.5),
    over `scores` of the items; tied judgments are left out and counted."""
    scores = np.asarray(scores, np.float64)
    outcome = np.asarray(outcome, np.float64)
    decided = outcome != TIE
    won = outcome[decided] == WON
    a, b = scores[np.asarray(first)[decided]], scores[np.asarray(second)[decided]]
    winner, loser = np.where(won, a, b), np.where(won, b, a)
    right = (winner > loser) + 0.5 * (winner == loser)
    return {
        "pair_accuracy": float(right.mean()) if right.size else math.nan,
        "pairs": int(decided.sum()),
        "ties_left_out": int((~decided).sum()),
    }


def extend_folds(folds: np.ndarray, extra: int, k: int, seed: int = 0) -> np.ndarray:
    """Fold ids for `extra` more items (posts seen only in pairs) after `folds`: a seeded
    shuffle dealt round-robin, starting at the smallest fold, so folds stay balanced and the
    rated items keep the folds they had."""
    folds = np.asarray(folds, np.int64)
    sizes = np.bincount(folds, minlength=k)
    start = int(np.argmin(sizes)) if folds.size else 0
    order = np.random.default_rng([seed, 21]).permutation(extra)
    dealt = np.empty(extra, np.int64)
    dealt[order] = (start + np.arange(extra)) % k
    return np.concatenate([folds, dealt])


def pair_folds(item_folds: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Per pair: the fold that holds it out (both its items are in that fold's test items), or
    -1 for a pair across folds (tested in no fold, and left out of training in its two)."""
    a, b = item_folds[np.asarray(first)], item_folds[np.asarray(second)]
    return np.where(a == b, a, -1)


def fold_split(
    item_folds: np.ndarray, first: np.ndarray, second: np.ndarray, fold: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """(train pairs, held-out pairs, pairs dropped) of one fold: a pair trains when neither
    item is in the fold, is held out when both are, and is dropped when it straddles it."""
    a, b = item_folds[np.asarray(first)] == fold, item_folds[np.asarray(second)] == fold
    train, test = np.flatnonzero(~a & ~b), np.flatnonzero(a & b)
    return train, test, int(np.sum(a ^ b))
