"""Which pairs compare mode asks: strata and neighbours, close scores, never near-duplicates,
a random share, hidden repeats swapped, and the same pairs for the same seed."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import polars as pl

from assets.labels.pairing import (
    MIN_GAP,
    Pair,
    PairHistory,
    neighbour_strata,
    next_pair,
    pair_pool,
)

NOTHING = PairHistory(frozenset(), ())


def pool(per_stratum: int = 6) -> pl.DataFrame:
    """Two styles x deciles 0-3 of one site and rating, `per_stratum` posts each."""
    rows = [
        (f"danbooru:{style}{decile}{i}", f"danbooru/g/d{decile}/{style}")
        for style in ("anime", "photo")
        for decile in range(4)
        for i in range(per_stratum)
    ]
    return pl.DataFrame(rows, schema=["post_key", "stratum"], orient="row")


def draw(pairs, past=NOTHING, n=400, seed=0, **options) -> list[Pair]:
    rng = random.Random(seed)
    return [next_pair(pairs, past, rng, **options) for _ in range(n)]


def test_neighbouring_strata_share_site_rating_and_style_one_decile_apart():
    strata = {"d/g/d0/anime", "d/g/d1/anime", "d/g/d2/anime", "d/s/d1/anime", "d/g/d1/photo"}
    assert neighbour_strata("d/g/d1/anime", strata) == ["d/g/d0/anime", "d/g/d2/anime"]
    assert neighbour_strata("d/g/d0/anime", strata) == ["d/g/d1/anime"]
    assert neighbour_strata("d/g/d1/photo", strata) == []
    assert neighbour_strata("not a stratum", strata) == []


def test_pairs_come_from_a_stratum_or_its_neighbours_with_a_random_share():
    frame = pool()
    stratum = dict(frame.iter_rows())
    drawn = draw(pair_pool(frame), n=2000, random_share=0.2, repeat_share=0)
    counts = Counter(p.source for p in drawn)
    assert counts["repeat"] == counts["close"] == 0
    assert 0.16 <= counts["random"] / 2000 <= 0.24, counts
    assert counts["neighbour"] > 0.15 * 2000 and counts["stratum"] > 0.4 * 2000, counts
    for pair in drawn:
        a, b = stratum[pair.left_key], stratum[pair.right_key]
        if pair.source == "stratum":
            assert a == b
        if pair.source == "neighbour":
            assert a.rsplit("/", 2)[0][:-1] == b.rsplit("/", 2)[0][:-1]  # same site and rating
            assert a.split("/")[3] == b.split("/")[3]  # same style
            assert abs(int(a.split("/")[2][1:]) - int(b.split("/")[2][1:])) == 1
    random_pairs = [p for p in drawn if p.source == "random"]
    across = sum(stratum[p.left_key] != stratum[p.right_key] for p in random_pairs)
    assert across > 0.6 * len(random_pairs), "random pairs span the pool, not one stratum"
    left_first = sum(p.left_key < p.right_key for p in drawn)
    assert 0.45 <= left_first / 2000 <= 0.55, "which side a post shows on is a coin toss"


def test_the_same_seed_gives_the_same_pairs():
    pairs = pair_pool(pool())
    assert draw(pairs, seed=3) == draw(pairs, seed=3)
    assert draw(pairs, seed=3) != draw(pairs, seed=4)


def test_with_scores_the_partner_has_a_close_predicted_score():
    frame = pool()
    keys = frame["post_key"].to_list()
    scores = pl.DataFrame({"post_key": keys, "score": np.linspace(0, 1, len(keys))})
    pairs = pair_pool(frame, scores=scores)
    drawn = draw(pairs, n=500, random_share=0, repeat_share=0)
    assert {p.source for p in drawn} == {"close"}
    score = dict(scores.iter_rows())
    step = 1 / (len(keys) - 1)
    gaps = [abs(score[p.left_key] - score[p.right_key]) for p in drawn]
    assert max(gaps) <= 3 * step + 1e-9, "among the three closest of stratum and neighbours"


def test_near_duplicates_are_never_paired():
    frame = pool(per_stratum=4)
    keys = frame["post_key"].to_list()
    rng = np.random.default_rng(0)
    base = rng.normal(size=(len(keys) // 2, 16))
    # Every post has a twin (the next key) whose vector is almost the same.
    rows = np.repeat(base, 2, axis=0) + rng.normal(scale=1e-3, size=(len(keys), 16))
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    twins = {frozenset(keys[i : i + 2]) for i in range(0, len(keys), 2)}
    with_vectors = pair_pool(frame, vectors=(keys, rows))
    drawn = draw(with_vectors, n=1000, random_share=0.3, repeat_share=0, max_cosine=0.95)
    assert not twins & {p_.key if p_ else None for p_ in drawn}
    without = draw(pair_pool(frame), n=1000, random_share=0.3, repeat_share=0)
    assert twins & {p.key for p in without}, "without vectors the twins do meet"


def test_pairs_judged_or_held_never_come_back():
    frame = pool(per_stratum=2)
    pairs = pair_pool(frame)
    keys = frame["post_key"].to_list()
    every = {frozenset((a, b)) for i, a in enumerate(keys) for b in keys[i + 1 :]}
    held = set(list(every)[:50])
    seen = frozenset(list(every)[50:-1])
    rng = random.Random(0)
    last = next_pair(pairs, PairHistory(seen, ()), rng, exclude=held, repeat_share=0)
    assert last.key == list(every)[-1]
    assert next_pair(pairs, PairHistory(seen | {last.key}, ()), rng, exclude=held) is None


def test_hidden_repeats_come_swapped_and_never_recent():
    frame = pool()
    pairs = pair_pool(frame)
    rng = random.Random(5)
    shown: list[tuple[str, str]] = []
    repeats = 0
    for n in range(600):
        past = PairHistory(frozenset(frozenset(p) for p in shown), tuple(shown))
        pair = next_pair(pairs, past, rng, random_share=0.2, repeat_share=0.1)
        if pair.source == "repeat":
            repeats += 1
            key = pair.key
            last = max(i for i, p in enumerate(shown) if frozenset(p) == key)
            assert n - last > MIN_GAP, "never one of the last MIN_GAP pairs"
            assert (pair.right_key, pair.left_key) == shown[last], "left and right swapped"
        else:
            assert frozenset((pair.left_key, pair.right_key)) not in past.seen
        shown.append((pair.left_key, pair.right_key))
    assert 0.06 <= repeats / 600 <= 0.14, repeats
    assert max(Counter(frozenset(p) for p in shown).values()) == 2
