"""stats.py and queue.py on tiny literal event logs."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from assets.labels import queue, stats
from assets.labels.store import EVENTS

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def log(*rows: tuple) -> pl.DataFrame:
    """Events from (labeler, post_key, kind, value, undoes) rows; ids and times in order."""
    return pl.DataFrame(
        [
            (
                i + 1,
                key,
                who,
                kind,
                value,
                undoes,
                (T0 + timedelta(minutes=i)).isoformat(),
                None,
                "app",
            )
            for i, (who, key, kind, value, undoes) in enumerate(rows)
        ],
        schema=EVENTS,
        orient="row",
    )


EVENTS_LOG = log(
    ("ann", "a", "label", 1, None),  # 1
    ("ann", "b", "label", 2, None),  # 2
    ("ann", "c", "label", 3, None),  # 3
    ("ann", "a", "label", 1, None),  # 4: a repeat, the same
    ("ann", "b", "label", 4, None),  # 5: a repeat, 2 off
    ("bob", "a", "label", 2, None),  # 6
    ("bob", "b", "label", 2, None),  # 7
    ("bob", "c", "label", 4, None),  # 8
    ("bob", "d", "skip", None, None),  # 9
    ("bob", "e", "label", 5, None),  # 10
    ("bob", "e", "undo", None, 10),  # 11
)


def test_votes_are_each_labelers_latest_label_undos_honoured():
    votes = stats.votes(EVENTS_LOG).sort("labeler", "post_key")
    assert votes.select("labeler", "post_key", "value").rows() == [
        ("ann", "a", 1),
        ("ann", "b", 4),
        ("ann", "c", 3),
        ("bob", "a", 2),
        ("bob", "b", 2),
        ("bob", "c", 4),
    ]


def test_per_labeler_counts():
    assert stats.per_labeler(EVENTS_LOG).drop("last_at").rows() == [
        ("ann", 5, 3, 2, 0, 0),
        ("bob", 3, 3, 0, 1, 1),
    ]


def test_label_distribution_counts_votes():
    table = stats.label_distribution(EVENTS_LOG)
    assert table["count"].to_list() == [1, 2, 1, 2, 0]
    assert table["share"].sum() == pytest.approx(1.0)


def test_self_consistency_compares_repeats_with_the_first_label():
    assert stats.self_consistency(EVENTS_LOG).rows() == [
        ("ann", 2, 1, 0.5, 1.0),
        ("bob", 0, 0, None, None),
    ]


def test_agreement_and_quadratic_kappa():
    # ann's votes a1 b4 c3, bob's a2 b2 c4.
    row = stats.agreement(EVENTS_LOG).row(0, named=True)
    assert (row["labeler_a"], row["labeler_b"], row["shared"], row["exact"]) == ("ann", "bob", 3, 0)
    assert row["kappa"] == pytest.approx(stats.quadratic_kappa([1, 4, 3], [2, 2, 4]))


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ([1, 2, 3], [1, 2, 3], 1.0),
        ([1, 2, 3], [2, 2, 4], 2 / 3),  # observed weight 2/16 over chance 6/16
        ([1, 5], [5, 1], -1.0),
        ([3, 3], [3, 3], None),  # both constant: chance explains everything
        ([], [], None),
    ],
)
def test_quadratic_kappa_by_hand(a, b, expected):
    got = stats.quadratic_kappa(a, b)
    assert got == (None if expected is None else pytest.approx(expected))


def test_labels_per_hour_is_recent_pace():
    ten_a_minute = log(*[("ann", f"p{i}", "label", 3, None) for i in range(10)])
    now = T0 + timedelta(minutes=10)
    assert stats.labels_per_hour(ten_a_minute, "ann", now) == pytest.approx(60.0)
    assert stats.labels_per_hour(ten_a_minute, "ann", now + timedelta(hours=1)) == 0.0


def test_progress_counts_pool_posts_only():
    got = stats.progress(EVENTS_LOG, "bob", {"a", "b", "d", "z"}, T0)
    assert (got["labeled"], got["skipped"], got["total"]) == (2, 1, 4)


def pool(rounds: dict[str, int]) -> pl.DataFrame:
    return pl.DataFrame({"post_key": list(rounds), "round": list(rounds.values())})


def test_labeling_order_is_by_round_and_stable_when_a_round_is_added():
    first = {f"s:{i}": 1 for i in range(50)}
    order = queue.labeling_order(pool(first), seed=3)
    assert sorted(order) == sorted(first) and order != sorted(first)
    grown = queue.labeling_order(pool({**{f"s:{i}": 2 for i in range(50, 60)}, **first}), 3)
    assert grown[:50] == order and set(grown[50:]) == {f"s:{i}" for i in range(50, 60)}
    assert queue.labeling_order(pool(first), seed=4) != order


def test_next_item_skips_seen_and_excluded_then_is_done():
    past = queue.history(EVENTS_LOG, "bob")
    assert past.seen == {"a", "b", "c", "d"}  # the undone label of e does not count
    order = ["a", "b", "c", "d", "e", "f"]
    assert queue.next_item(order, past, repeat_share=0).post_key == "e"
    assert queue.next_item(order, past, {"e"}, repeat_share=0).post_key == "f"
    assert queue.next_item(order, past, {"e", "f"}, repeat_share=0) is None


def test_repeats_need_enough_history_and_skip_recent_posts():
    labeled = tuple(f"p{i}" for i in range(25))
    past = queue.History(seen=frozenset(labeled), labeled=labeled)
    rng = random.Random(0)
    picks = {queue.repeat_candidate(past, (), rng, min_gap=20) for _ in range(200)}
    assert picks == {"p0", "p1", "p2", "p3", "p4"}
    assert queue.repeat_candidate(past, {"p0", "p1", "p2", "p3", "p4"}, rng, 20) is None
    short = queue.History(seen=frozenset(labeled[:20]), labeled=labeled[:20])
    assert queue.repeat_candidate(short, (), rng, min_gap=20) is None
    pick = queue.next_item(["new"], past, repeat_share=1.0, rng=rng)
    assert pick.repeat and pick.post_key in {"p0", "p1", "p2", "p3", "p4"}
    assert queue.next_item(["new"], short, repeat_share=1.0, rng=rng) == queue.Pick("new", False)
