"""The demo's simulated labeling session, through the real app, is the same on every run."""

from __future__ import annotations

import polars as pl

from assets.labels.store import LabelStore
from scoretag.demo.labeling import PAIRS, labeling_app, simulate
from tests.labels.conftest import make_home, store_events


def _session(root, demo_images, times: int = 1) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The session's rating events and pair events (the session run `times` times over)."""
    images_dir, _ = demo_images
    home = make_home(root, demo_images, size=120)
    pool_path = home / "data" / "rating_pool" / "pool.parquet"
    manifest = pl.read_parquet(images_dir.parent / "demo" / "images.parquet")
    with labeling_app(pool_path, home / "images", home / "labels.sqlite", seed=0) as url:
        for _ in range(times):
            simulate(url, pl.read_parquet(pool_path), manifest)
    with LabelStore(home / "labels.sqlite", read_only=True) as store:
        pairs = store.pair_events()
    ratings = store_events(home).select("labeler", "post_key", "kind", "value")
    return ratings, pairs.select("labeler", "left_key", "right_key", "kind", "choice")


def test_the_same_seed_gives_the_same_labels_pairs_and_hidden_repeats(tmp_path, demo_images):
    first, first_pairs = _session(tmp_path / "a", demo_images)
    # the same seed, run twice over: the second pass tops up to the targets, adding nothing
    again, again_pairs = _session(tmp_path / "b", demo_images, times=2)
    assert first.height > 100 and first.equals(again)
    repeats = first.filter(pl.col("kind") == "label").group_by("labeler", "post_key").len()
    assert repeats["len"].max() > 1  # hidden repeats were served, at the same turns
    assert first_pairs.equals(again_pairs)  # the same pairs shown, the same choices made
    per_labeler = dict(first_pairs.group_by("labeler").len().iter_rows())
    assert per_labeler == {
        "simulated-steady": PAIRS[0],
        "simulated-harsh": PAIRS[1],
        "simulated-lenient": PAIRS[2],
    }
    assert set(first_pairs["kind"]) == {"choice"}  # every image of this pool is usable
    assert set(first_pairs["choice"]) == {"left", "right", "tie"}
