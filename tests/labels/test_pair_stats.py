"""What pair judgments say about the labelers: pace, agreement, self-consistency on swapped
repeats, and position bias on a planted biased labeler."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from assets.labels import pair_stats
from assets.labels.store import LabelStore

START = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def at(minutes: float) -> str:
    return (START + timedelta(minutes=minutes)).isoformat(timespec="milliseconds")


@pytest.fixture
def store(tmp_path):
    with LabelStore(tmp_path / "labels.sqlite") as s:
        yield s


def test_position_bias_shows_for_a_planted_biased_labeler(store):
    rng = random.Random(0)
    for i in range(400):
        left, right = f"p:{i}", f"p:{i + 1000}"
        # "fair" picks by the post (its true better one, shown on a random side); "lefty"
        # picks the left side 75% of the time whatever is shown.
        better_left = rng.random() < 0.5
        store.add_pair(left, right, "fair", "left" if better_left else "right", created_at=at(i))
        lefty = "left" if rng.random() < 0.75 else "right"
        store.add_pair(left, right, "lefty", lefty if i % 10 else "tie", created_at=at(i))
    bias = {row["labeler"]: row for row in pair_stats.position_bias(store.pair_events()).to_dicts()}
    assert bias["lefty"]["decisive"] == 360, "ties are left out"
    assert 0.70 <= bias["lefty"]["left_share"] <= 0.80
    assert bias["lefty"]["ci_low"] > 0.5 and bias["lefty"]["biased"] is True
    assert (
        bias["fair"]["ci_low"] < 0.5 < bias["fair"]["ci_high"] and bias["fair"]["biased"] is False
    )
    assert bias["all"]["decisive"] == 760


def test_wilson_interval():
    low, high = pair_stats.wilson(75, 100)
    assert low == pytest.approx(0.6569, abs=1e-4) and high == pytest.approx(0.8245, abs=1e-4)
    assert pair_stats.wilson(0, 0) == (None, None)
    assert pair_stats.wilson(10, 10)[1] == pytest.approx(1.0)


def test_agreement_on_shared_pairs_in_either_order(store):
    store.add_pair("a", "b", "ann", "left")  # a wins
    store.add_pair("b", "a", "bob", "right")  # a wins, shown swapped: the same winner
    store.add_pair("c", "d", "ann", "tie")
    store.add_pair("c", "d", "bob", "tie")  # both tie: the same
    store.add_pair("e", "f", "ann", "left")
    store.add_pair("e", "f", "bob", "right")  # disagree
    store.add_pair("g", "h", "ann", "left")
    store.add_pair("g", "h", "bob", "tie")  # one tie: not the same, not decisive
    store.add_pair("x", "y", "ann", "left")  # not shared
    store.add_pair("e", "f", "ann", "right")  # ann's latest of e/f now agrees with bob
    (row,) = pair_stats.agreement(store.pair_events()).to_dicts()
    assert row == {
        "labeler_a": "ann",
        "labeler_b": "bob",
        "shared": 4,
        "same": 3,
        "same_share": 0.75,
        "decisive": 2,
        "decisive_same_share": 1.0,
    }


def test_self_consistency_on_swapped_repeats(store):
    store.add_pair("a", "b", "ann", "left")
    store.add_pair("b", "a", "ann", "right")  # swapped, same winner a
    store.add_pair("c", "d", "ann", "left")
    store.add_pair("d", "c", "ann", "left")  # swapped, now d: inconsistent
    store.add_pair("e", "f", "ann", "tie")
    store.add_pair("e", "f", "ann", "tie")  # same order, tie again
    store.add_pair("g", "h", "ann", "left")
    store.add_pair("h", "g", "ann", "left")
    store.undo_pair("ann")  # an undone repeat counts nowhere
    (row,) = pair_stats.self_consistency(store.pair_events()).to_dicts()
    assert row == {"labeler": "ann", "repeats": 3, "swapped": 2, "same": 2, "same_share": 2 / 3}


def test_pace_per_labeler_and_hour(store):
    for i in range(30):
        store.add_pair(f"a{i}", f"b{i}", "ann", "left", created_at=at(i * 4))  # 15 an hour
    store.add_pair("c", "d", "ann", "skip", created_at=at(121))
    events = store.pair_events()
    hourly = pair_stats.hourly(events).to_dicts()
    assert [(r["hour"], r["choices"]) for r in hourly] == [
        ("2024-05-01T09:00", 15),
        ("2024-05-01T10:00", 15),
    ]
    (row,) = pair_stats.per_labeler(events, START + timedelta(minutes=120)).to_dicts()
    assert (row["choices"], row["pairs"], row["skips"], row["repeats"]) == (30, 30, 1, 0)
    # The last 15 minutes hold the choices at 108, 112 and 116: 3 in 12 minutes.
    assert row["per_hour"] == 15.0
