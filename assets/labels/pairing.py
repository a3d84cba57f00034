"""Which pair of pool posts a labeler compares next.

Most pairs are worth asking: two posts of one stratum, or of neighbouring strata (same site,
rating and style, score deciles one apart), so the choice is close enough to be informative.
Once predicted scores exist, the second post is one of the anchor's stratum or neighbours
whose predicted score is closest to the anchor's (source `close`). A `random_share` of pairs
is two posts drawn uniformly from the pool, so an evaluation on human pairs stays unbiased.
A `repeat_share` of pairs is a hidden repeat: a pair the labeler judged before, never one of
the last `min_gap`, shown with left and right swapped (position bias and self-consistency).
Near-duplicates (unit vectors with a cosine above `max_cosine`) are never paired, and a pair
the labeler has judged or skipped never comes back except as a repeat.
"""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

SOURCES = ("stratum", "neighbour", "close", "random", "repeat")
MIN_GAP = 20  # judgments between a pair's last showing and its repeat
NEIGHBOUR_SHARE = 0.3  # of the informative pairs: across neighbouring strata
CLOSEST = 3  # the second post is drawn among this many closest predicted scores
TRIES = 50  # anchors tried before an informative pair gives way to a random one
STRATUM = re.compile(r"^(?P<site>[^/]*)/(?P<rating>[^/]*)/d(?P<decile>\d+)/(?P<style>.*)$")


@dataclass(frozen=True)
class Pair:
    left_key: str
    right_key: str
    source: str  # one of SOURCES; the server's bookkeeping, never told to the client

    @property
    def key(self) -> frozenset[str]:
        return frozenset((self.left_key, self.right_key))


@dataclass(frozen=True)
class PairHistory:
    """What one labeler has compared (undone events left out)."""

    seen: frozenset[frozenset[str]]  # pairs chosen on or skipped, in either order
    shown: tuple[tuple[str, str], ...]  # (left, right) of every standing choice, oldest first


@dataclass
class PairPool:
    """The pool's posts by stratum, with optional predicted scores and unit vectors."""

    keys: list[str]
    strata: dict[str, str]
    by_stratum: dict[str, list[str]]
    neighbours: dict[str, list[str]]  # stratum -> posts of its neighbouring strata
    scores: dict[str, float] = field(default_factory=dict)
    vectors: dict[str, np.ndarray] = field(default_factory=dict)


def neighbour_strata(stratum: str, strata: Collection[str]) -> list[str]:
    """Strata of the same site, rating and style whose decile is one apart."""
    parts = STRATUM.match(stratum)
    if parts is None:
        return []
    site, rating, decile, style = parts.group("site", "rating", "decile", "style")
    return [
        f"{site}/{rating}/d{int(decile) + step}/{style}"
        for step in (-1, 1)
        if f"{site}/{rating}/d{int(decile) + step}/{style}" in strata
    ]


def pair_pool(
    pool: pl.DataFrame,
    scores: pl.DataFrame | None = None,
    vectors: tuple[Sequence[str], np.ndarray] | None = None,
) -> PairPool:
    """From the pool's post_key and stratum; `scores` (post_key, score) and `vectors` (post
    keys, unit rows) are optional and may cover only some posts."""
    keys = pool["post_key"].to_list()
    strata = dict(zip(keys, pool["stratum"].to_list(), strict=True))
    by_stratum: dict[str, list[str]] = defaultdict(list)
    for key, stratum in strata.items():
        by_stratum[stratum].append(key)
    neighbours = {
        s: [k for n in neighbour_strata(s, by_stratum) for k in by_stratum[n]] for s in by_stratum
    }
    known = set(strata)
    given = {}
    if scores is not None:
        given = {
            k: float(v) for k, v in scores.select("post_key", "score").iter_rows() if k in known
        }
    unit = {}
    if vectors is not None:
        unit = {k: row for k, row in zip(vectors[0], vectors[1], strict=True) if k in known}
    return PairPool(keys, strata, dict(by_stratum), neighbours, given, unit)


def pair_history(events: pl.DataFrame, labeler: str) -> PairHistory:
    """The labeler's history from the store's pair events (LabelStore.pair_events)."""
    from assets.labels.store import active_pairs

    mine = active_pairs(events.filter(pl.col("labeler") == labeler))
    seen = {frozenset(p) for p in mine.select("left_key", "right_key").iter_rows()}
    chosen = mine.filter(pl.col("kind") == "choice").select("left_key", "right_key")
    return PairHistory(frozenset(seen), tuple(chosen.iter_rows()))


def near_duplicates(pool: PairPool, a: str, b: str, max_cosine: float) -> bool:
    va, vb = pool.vectors.get(a), pool.vectors.get(b)
    return va is not None and vb is not None and float(va @ vb) > max_cosine


def next_pair(
    pool: PairPool,
    past: PairHistory,
    rng: random.Random,
    exclude: Collection[frozenset[str]] = (),
    random_share: float = 0.2,
    repeat_share: float = 0.05,
    max_cosine: float = 0.95,
    min_gap: int = MIN_GAP,
) -> Pair | None:
    """The next pair for this labeler, or None when no new pair can be found."""
    if len(pool.keys) < 2:
        return None
    blocked = set(past.seen) | set(exclude)
    if repeat_share > 0 and rng.random() < repeat_share:
        repeat = repeat_candidate(past, blocked - set(past.seen), rng, min_gap)
        if repeat is not None:
            return repeat
    if rng.random() >= random_share:
        informative = informative_pair(pool, blocked, rng, max_cosine)
        if informative is not None:
            return informative
    return random_pair(pool, blocked, rng, max_cosine)


def repeat_candidate(
    past: PairHistory, exclude: Collection[frozenset[str]], rng: random.Random, min_gap: int
) -> Pair | None:
    """A pair chosen on before the last `min_gap` choices, among those repeated least, with
    left and right swapped from its latest showing."""
    if len(past.shown) <= min_gap:
        return None
    recent = {frozenset(p) for p in past.shown[-min_gap:]}
    times = Counter(frozenset(p) for p in past.shown)
    last = {frozenset(p): p for p in past.shown}
    old = [k for k in times if k not in recent and k not in exclude]
    if not old:
        return None
    fewest = min(times[k] for k in old)
    left, right = rng.choice(sorted(last[k] for k in old if times[k] == fewest))
    return Pair(right, left, "repeat")


def informative_pair(
    pool: PairPool, blocked: set[frozenset[str]], rng: random.Random, max_cosine: float
) -> Pair | None:
    """An anchor post and a partner from its stratum or a neighbouring one (the closest
    predicted scores when the anchor has one)."""
    for _ in range(TRIES):
        anchor = rng.choice(pool.keys)
        stratum = pool.strata[anchor]
        across = rng.random() < NEIGHBOUR_SHARE and pool.neighbours[stratum]
        others = pool.neighbours[stratum] if across else pool.by_stratum[stratum]
        source = "neighbour" if across else "stratum"
        if anchor in pool.scores:
            others = [*pool.by_stratum[stratum], *pool.neighbours[stratum]]
            source = "close"
        fits = [
            k
            for k in others
            if k != anchor
            and frozenset((anchor, k)) not in blocked
            and not near_duplicates(pool, anchor, k, max_cosine)
        ]
        if source == "close":
            scored = sorted((k for k in fits if k in pool.scores), key=_distance(pool, anchor))
            fits = scored[:CLOSEST]
        if fits:
            return _ordered(anchor, rng.choice(fits), source, rng)
    return None


def random_pair(
    pool: PairPool, blocked: set[frozenset[str]], rng: random.Random, max_cosine: float
) -> Pair | None:
    """Two posts drawn uniformly from the pool (a sample of every possible pair). When most
    pairs are taken (a small pool, nearly done), every pair is tried in a shuffled order."""
    for _ in range(TRIES * 4):
        a, b = rng.sample(pool.keys, 2)
        if frozenset((a, b)) not in blocked and not near_duplicates(pool, a, b, max_cosine):
            return _ordered(a, b, "random", rng)
    order = rng.sample(pool.keys, len(pool.keys))
    for i, a in enumerate(order):
        for b in order[i + 1 :]:
            if frozenset((a, b)) not in blocked and not near_duplicates(pool, a, b, max_cosine):
                return _ordered(a, b, "random", rng)
    return None


def _distance(pool: PairPool, anchor: str):
    return lambda key: (abs(pool.scores[key] - pool.scores[anchor]), key)


def _ordered(a: str, b: str, source: str, rng: random.Random) -> Pair:
    """Which side each post shows on is a coin toss, so position carries no signal."""
    return Pair(a, b, source) if rng.random() < 0.5 else Pair(b, a, source)
