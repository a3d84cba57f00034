"""Which pool item a labeler sees next.

New items come in one order shared by every labeler (round, then a seeded shuffle), so
labelers overlap on the same posts first: agreement needs shared items. Now and then
(`repeat_share` of the items shown) a post the labeler already rated comes back, unannounced,
to measure self-consistency; it is never one rated in the last `min_gap` labels, so it is not
recognisable as the one just seen.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import polars as pl

from assets.labels.store import active

MIN_GAP = 20  # labels between a post's last rating and its repeat


@dataclass(frozen=True)
class History:
    """What one labeler has done, as far as the queue cares (undone events left out)."""

    seen: frozenset[str]  # posts labeled or skipped: never shown again as new items
    labeled: tuple[str, ...]  # post of every active label, oldest first (repeats included)


@dataclass(frozen=True)
class Pick:
    post_key: str
    repeat: bool  # for the server's bookkeeping only: the client is never told


def labeling_order(pool: pl.DataFrame, seed: int = 0) -> list[str]:
    """Post keys in the order labelers meet them: by round, then shuffled by a seeded hash.

    Hashing each key (rather than shuffling the list) keeps the order of earlier rounds
    unchanged when a new round is appended.
    """

    def shuffled(key: str) -> bytes:
        return hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()

    pairs = zip(pool["round"].to_list(), pool["post_key"].to_list(), strict=True)
    ranked = sorted((rnd, shuffled(key), key) for rnd, key in pairs)
    return list(dict.fromkeys(key for _, _, key in ranked))


def history(events: pl.DataFrame, labeler: str) -> History:
    """The labeler's history from the store's events frame (see LabelStore.events)."""
    mine = active(events.filter(pl.col("labeler") == labeler))
    labeled = mine.filter(pl.col("kind") == "label")["post_key"].to_list()
    return History(seen=frozenset(mine["post_key"].to_list()), labeled=tuple(labeled))


def next_item(
    order: Sequence[str],
    past: History,
    exclude: Collection[str] = (),
    repeat_share: float = 0.05,
    rng: random.Random | None = None,
    min_gap: int = MIN_GAP,
) -> Pick | None:
    """The next post for this labeler, or None when no new post is left outside `exclude`.

    `exclude` holds what the client already has queued (or is still saving), so it never
    gets the same post twice in a row of preloads.
    """
    rng = rng or random.Random()
    if repeat_share > 0 and rng.random() < repeat_share:
        key = repeat_candidate(past, exclude, rng, min_gap)
        if key is not None:
            return Pick(key, repeat=True)
    for key in order:
        if key not in past.seen and key not in exclude:
            return Pick(key, repeat=False)
    return None


def repeat_candidate(
    past: History, exclude: Collection[str], rng: random.Random, min_gap: int = MIN_GAP
) -> str | None:
    """A post labeled before the last `min_gap` labels, among those repeated least so far."""
    if len(past.labeled) <= min_gap:
        return None
    recent = set(past.labeled[-min_gap:])
    times = Counter(past.labeled)
    old = [k for k in times if k not in recent and k not in exclude]
    if not old:
        return None
    fewest = min(times[k] for k in old)
    return rng.choice(sorted(k for k in old if times[k] == fewest))
