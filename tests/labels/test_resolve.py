"""manual_labels' resolution: each labeler's latest label, averaged over labelers."""

from pathlib import Path

import polars as pl
import pytest

from assets.labels.resolve import resolve
from assets.labels.store import LabelStore, LabelStoreError

POOL = pl.DataFrame(
    {
        "post_key": ["danbooru:1", "danbooru:2", "e621:3"],
        "image_key": ["a" * 32, "b" * 32, "c" * 32],
    }
)


@pytest.fixture
def store(tmp_path: Path):
    with LabelStore(tmp_path / "labels.sqlite") as s:
        yield s


def test_latest_label_per_labeler_averaged_over_labelers(store):
    store.add("danbooru:1", "ann", 2)
    store.add("danbooru:1", "ann", 4)  # a hidden repeat: the latest counts
    store.add("danbooru:1", "bob", 5)
    store.add("danbooru:2", "bob", 1)
    store.add("e621:3", "ann", "skip")
    got = {r["post_key"]: r for r in resolve(store.events(), POOL).to_dicts()}
    assert set(got) == {"danbooru:1", "danbooru:2"}  # a skip is not a label
    assert got["danbooru:1"]["target"] == 4.5 and got["danbooru:1"]["labelers"] == 2
    assert got["danbooru:1"]["labels"] == [4, 5]
    assert got["danbooru:2"]["site"] == "danbooru" and got["danbooru:2"]["post_id"] == 2


def test_undone_labels_do_not_count(store):
    store.add("danbooru:1", "ann", 5)
    store.add("danbooru:1", "ann", 1)
    assert store.undo("ann")["value"] == 1
    store.add("danbooru:2", "ann", 3)
    assert store.undo("ann")["post_key"] == "danbooru:2"
    got = resolve(store.events(), POOL)
    assert got.select("post_key", "target").rows() == [("danbooru:1", 5.0)]
    assert store.undo("ann")["value"] == 5 and store.undo("ann") is None
    assert resolve(store.events(), POOL).height == 0
    assert store.events().height == 6  # three labels, three undos: nothing is deleted


def test_labels_for_posts_outside_the_pool_are_kept_and_flagged(store):
    store.add("gelbooru:99", "ann", 3, source="import")
    (row,) = resolve(store.events(), POOL).to_dicts()
    assert row["in_pool"] is False and row["site"] == "gelbooru" and row["post_id"] == 99


@pytest.mark.parametrize("value", [0, 6, "5", 2.5, True, None, "x"])
def test_the_store_refuses_values_that_are_not_labels(store, value):
    with pytest.raises(LabelStoreError, match="integer from 1 to 5"):
        store.add("danbooru:1", "ann", value)
    assert store.events().height == 0


def test_a_retried_request_is_stored_once(store):
    first = store.add("danbooru:1", "ann", 4, request_id="r-1")
    assert store.add("danbooru:1", "ann", 4, request_id="r-1") == first
    assert store.add("danbooru:1", "bob", 4, request_id="r-1") != first  # ids are per labeler
    assert store.events().height == 2


def test_events_after_an_id_are_only_the_new_ones(store):
    ids = [store.add("danbooru:1", "ann", v) for v in (1, 2, 3)]
    assert store.events(after=ids[0])["value"].to_list() == [2, 3]
    assert store.events(after=ids[-1]).height == 0
