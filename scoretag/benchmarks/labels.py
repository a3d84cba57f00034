"""`scoretag bench labels`: ratings or pairs, for the same number of judgments?

On planted data (`assets.head.planted`: styles of Dirichlet sizes, a known quality q), a panel
of simulated labelers like the demo's (`scoretag.demo.labeler.PANEL`: noise 0.45, 0.6 and
0.7 label steps, offsets 0, -0.35 and +0.3) gives N judgments of one kind:

* ratings: a random pool item rated by a random labeler, clip(round(3 + 1.2 q + offset +
  noise z), 1, 5), as the planted labels are drawn;
* pairs: two pool items compared by a random labeler, who perceives each as 3 + 1.2 q +
  noise z (fresh z per side) and picks the higher, or says tie when the two are within
  TIE_STEPS of each other. A labeler's offset moves both sides alike: it cancels.

Pairs are asked as the labeling app asks them (`assets.labels.pairing.next_pair`, the app's
random share, no hidden repeats: they cost judgments and the bench measures learning), the
pool's strata made from a booru-like score (q plus content noise) in deciles within each
style: `random` draws every pair uniformly; `active` draws the first ACTIVE_START share at
random, then, after each round, gives the pairing the current head's scores, so that most
pairs are within a stratum or its neighbours and close in predicted score.

Every head is the linear one of `fit_head` (ridge on ratings, a linear Bradley-Terry with
Davidson's ties on pairs), scored by Spearman against the planted quality of the held-out
test items. The target is 95% of the best Spearman any kind reaches at the largest N;
`judgments_to_target` is where each kind's curve reaches it, interpolated in log N between
the budgets around it (None: not within the budgets), and `fewer` names the kind that needs
the fewest.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

import numpy as np
import polars as pl
from scipy import stats

from assets.head.pairfit import Judged
from assets.head.pairs import LOST, TIE, WON
from assets.head.planted import LABEL_SLOPE, Planted, planted
from assets.head.train import TrainSettings, fit_head
from assets.labels.pairing import PairHistory, next_pair, pair_pool
from scoretag.demo.labeler import PANEL

BUDGETS = (250, 500, 1000, 2000, 4000)
TIE_STEPS = 0.25  # perceived qualities this close (in label steps) are called a tie
ACTIVE_START = 0.25  # share of the largest budget drawn at random before pairs get scores
ROUNDS = 8  # scored rounds of the active sampler up to the largest budget
BOORU_NOISE = 1.0  # content and age in a booru score, in units of q's std
RANDOM_SHARE = 0.2  # the app's [labels] random_pair_share
KINDS = ("ratings", "pairs_random", "pairs_active")
LINEAR = TrainSettings(head_type="ridge")


def _panel(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Which labeler gives each of n judgments: their offsets and noise levels."""
    who = rng.integers(0, len(PANEL), n)
    offsets = np.array([p.bias for p in PANEL])[who]
    noise = np.array([p.noise for p in PANEL])[who]
    return offsets, noise


def rate(data: Planted, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """1-5 ratings of `rows`, each by a random labeler of the panel."""
    offsets, noise = _panel(rng, len(rows))
    raw = 3 + LABEL_SLOPE * data.quality[rows] + offsets + noise * rng.standard_normal(len(rows))
    return np.clip(np.rint(raw), 1, 5)


def compare(
    data: Planted, first: np.ndarray, second: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Outcomes (WON/LOST/TIE for `first`), each pair by a random labeler of the panel."""
    _, noise = _panel(rng, len(first))
    seen = [
        LABEL_SLOPE * data.quality[side] + noise * rng.standard_normal(len(side))
        for side in (first, second)
    ]
    gap = seen[0] - seen[1]
    return np.where(np.abs(gap) < TIE_STEPS, TIE, np.where(gap > 0, WON, LOST))


def strata(data: Planted, rng: np.random.Generator) -> pl.DataFrame:
    """The pool as the rating pool has it: post_key, and a stratum of style and booru-score
    decile (q plus content noise, in deciles within the style)."""
    rows = data.pool_index
    booru = data.quality[rows] + BOORU_NOISE * rng.standard_normal(len(rows))
    frame = pl.DataFrame({"row": rows, "cluster": data.cluster[rows], "booru": booru})
    return frame.with_columns(
        decile=(pl.col("booru").rank("ordinal").over("cluster") - 1)
        * 10
        // pl.len().over("cluster"),
    ).select(
        post_key=pl.col("row").cast(pl.String),
        stratum=pl.format("planted/general/d{}/c{}", "decile", "cluster"),
    )


def _pairs(
    pool: pl.DataFrame, count: int, rng: random.Random, asked: set, scores=None
) -> list[tuple[int, int]]:
    """`count` new pairs from the pairing the app uses (no repeats), `asked` kept up to date."""
    source = pair_pool(pool, scores)
    found = []
    for _ in range(count):
        pair = next_pair(
            source, PairHistory(frozenset(), ()), rng, asked, RANDOM_SHARE, repeat_share=0.0
        )
        if pair is None:
            break
        asked.add(pair.key)
        found.append((int(pair.left_key), int(pair.right_key)))
    return found


def _spearman(data: Planted, predict) -> float:
    test = data.test_index
    return round(float(stats.spearmanr(predict(data.X[test]), data.quality[test])[0]), 5)


def ratings_curve(data: Planted, budgets: Sequence[int], seed: int) -> list[float]:
    rng = np.random.default_rng([seed, 1])
    order = rng.permutation(data.pool_index)[: max(budgets)]
    labels = rate(data, order, rng)
    curve = []
    for n in budgets:
        y = np.full(len(data.X), np.nan)
        y[order[:n]] = labels[:n]
        curve.append(_spearman(data, fit_head(data.X, labels=y, settings=LINEAR).predict))
    return curve


def pairs_curve(
    data: Planted, pool: pl.DataFrame, budgets: Sequence[int], seed: int, active: bool
) -> list[float]:
    rng = np.random.default_rng([seed, 2 + active])
    pick = random.Random(seed * 10 + 2 + active)
    asked: set = set()
    if active:
        start = int(ACTIVE_START * max(budgets))
        pairs = _pairs(pool.with_columns(stratum=pl.lit("all")), start, pick, asked)
        rounds = np.linspace(start, max(budgets), ROUNDS + 1).astype(int)[1:]
    else:
        pairs, rounds = [], [max(budgets)]
    outcomes = np.empty(0)
    head = None
    for end in rounds:
        if head is not None:
            keys = pool["post_key"]
            rows = keys.cast(pl.Int64).to_numpy()
            scored = pl.DataFrame({"post_key": keys, "score": head.predict(data.X[rows])})
            pairs += _pairs(pool, end - len(pairs), pick, asked, scored)
        elif not active:
            pairs += _pairs(pool.with_columns(stratum=pl.lit("all")), end, pick, asked)
        first, second = (np.array(side) for side in zip(*pairs, strict=True))
        done = len(outcomes)
        outcomes = np.concatenate([outcomes, compare(data, first[done:], second[done:], rng)])
        head = fit_head(data.X, pairs=Judged(first, second, outcomes), settings=LINEAR)
    first, second = (np.array(side) for side in zip(*pairs, strict=True))
    return [
        _spearman(
            data,
            fit_head(
                data.X, pairs=Judged(first[:n], second[:n], outcomes[:n]), settings=LINEAR
            ).predict,
        )
        for n in budgets
    ]


def crossing(budgets: Sequence[int], curve: Sequence[float], target: float) -> int | None:
    """The judgments at which `curve` first reaches `target`, interpolated linearly in
    log(judgments) between the two budgets around it (None: not within the budgets)."""
    for i, (n, rho) in enumerate(zip(budgets, curve, strict=True)):
        if rho >= target:
            if i == 0:
                return int(n)
            low, below = budgets[i - 1], curve[i - 1]
            share = (target - below) / (rho - below)
            return int(round(low * (n / low) ** share))
    return None


def _curves(n: int, dim: int, test: int, budgets: Sequence[int], seed: int) -> dict:
    data = planted(n=n, dim=dim, test=test, seed=seed)
    pool = strata(data, np.random.default_rng([seed, 9]))
    return {
        "ratings": ratings_curve(data, budgets, seed),
        "pairs_random": pairs_curve(data, pool, budgets, seed, active=False),
        "pairs_active": pairs_curve(data, pool, budgets, seed, active=True),
    }


def labels_bench(
    n: int = 14_000,
    dim: int = 256,
    test: int = 4_000,
    budgets: Sequence[int] = BUDGETS,
    seed: int = 0,
    seeds: int = 3,
) -> dict:
    """Spearman against the planted quality for each kind of judgment and each budget, the
    mean over `seeds` planted sets (seed, seed + 1, ...)."""
    started = time.perf_counter()
    budgets = sorted(budgets)
    runs = [_curves(n, dim, test, budgets, s) for s in range(seed, seed + seeds)]
    curves = {
        kind: [round(float(v), 5) for v in np.mean([run[kind] for run in runs], axis=0)]
        for kind in KINDS
    }
    best = max(curve[-1] for curve in curves.values())
    target = round(0.95 * best, 5)
    reach = {kind: crossing(budgets, curve, target) for kind, curve in curves.items()}
    reached = {k: v for k, v in reach.items() if v is not None}
    return {
        "bench": "labels",
        "n": n,
        "dim": dim,
        "test": test,
        "seeds": list(range(seed, seed + seeds)),
        "labelers": [{"name": p.name, "noise": p.noise, "offset": p.bias} for p in PANEL],
        "tie_steps": TIE_STEPS,
        "budgets": budgets,
        "spearman": curves,
        "spearman_by_seed": runs,
        "target_spearman": target,
        "judgments_to_target": reach,
        "fewer": min(reached, key=reached.get) if reached else None,
        "seconds": round(time.perf_counter() - started, 2),
    }
