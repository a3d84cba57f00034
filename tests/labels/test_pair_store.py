"""Pair judgments in the label store: idempotent retries, undo, repeats, and old stores."""

from __future__ import annotations

import sqlite3

import pytest

from assets.labels.store import LabelStore, LabelStoreError


def test_a_retried_choice_is_stored_once_and_undo_takes_the_latest(tmp_path):
    with LabelStore(tmp_path / "labels.sqlite") as store:
        first = store.add_pair("a", "b", "ann", "left", client="c1", request_id="r1")
        assert store.add_pair("a", "b", "ann", "left", request_id="r1") == first
        assert store.add_pair("c", "d", "bob", "right", request_id="r1") != first  # per labeler
        store.add_pair("c", "d", "ann", "tie", source="random")
        store.add_pair("e", "f", "ann", "skip")
        assert store.undo_pair("ann") == {
            "id": 4,
            "left_key": "e",
            "right_key": "f",
            "kind": "skip",
            "choice": None,
        }
        assert store.undo_pair("ann")["choice"] == "tie"
        events = store.pair_events()
        assert store.events().is_empty(), "pairs never show up as ratings"
    assert events["kind"].to_list() == ["choice", "choice", "choice", "skip", "undo", "undo"]
    assert events["undoes"].to_list()[-2:] == [4, 3]
    assert events["source"].to_list()[:3] == ["app", "app", "random"]
    assert events["client"][0] == "c1"


def test_a_judgment_of_a_pair_judged_before_in_either_order_is_a_repeat(tmp_path):
    with LabelStore(tmp_path / "labels.sqlite") as store:
        store.add_pair("a", "b", "ann", "left")
        store.add_pair("b", "a", "ann", "right")  # swapped: a repeat
        store.add_pair("a", "b", "bob", "left")  # another labeler: not a repeat
        store.add_pair("c", "d", "ann", "left")
        store.undo_pair("ann")
        store.add_pair("d", "c", "ann", "left")  # the first was undone: not a repeat
        store.add_pair("e", "f", "ann", "skip")
        store.add_pair("f", "e", "ann", "left")  # a skip is no judgment
        repeats = store.pair_events().filter(kind="choice")["repeat"].to_list()
    assert repeats == [False, True, False, False, False, False]


@pytest.mark.parametrize(
    "left, right, choice, message",
    [
        ("a", "b", "up", "choice must be"),
        ("a", "b", None, "choice must be"),
        ("a", "a", "left", "two"),
    ],
)
def test_what_the_store_refuses(tmp_path, left, right, choice, message):
    with (
        LabelStore(tmp_path / "labels.sqlite") as store,
        pytest.raises(LabelStoreError, match=message),
    ):
        store.add_pair(left, right, "ann", choice)


def test_a_store_from_before_pairs_is_migrated_in_place(tmp_path):
    path = tmp_path / "labels.sqlite"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, post_key TEXT NOT NULL,"
        " labeler TEXT NOT NULL, kind TEXT NOT NULL, value INTEGER, undoes INTEGER,"
        " created_at TEXT NOT NULL, client TEXT, source TEXT NOT NULL DEFAULT 'app');"
        "INSERT INTO events (post_key, labeler, kind, value, created_at)"
        " VALUES ('a', 'ann', 'label', 4, '2024-01-01T00:00:00.000+00:00');"
    )
    old.commit()
    old.close()
    with LabelStore(path, read_only=True) as reader:
        assert reader.pair_events().is_empty(), "read-only: no table yet, no pairs"
    with LabelStore(path) as store:
        store.add_pair("a", "b", "ann", "left")
        assert store.events()["value"].to_list() == [4]
        assert store.pair_events().height == 1
