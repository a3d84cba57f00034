"""The demo's simulated labeling session, through the real app, is the same on every run."""

from __future__ import annotations

import polars as pl

from scoretag.demo.labeling import labeling_app, simulate
from tests.labels.conftest import make_home, store_events


def _session(root, demo_images) -> pl.DataFrame:
    images_dir, _ = demo_images
    home = make_home(root, demo_images, size=120)
    pool_path = home / "data" / "rating_pool" / "pool.parquet"
    manifest = pl.read_parquet(images_dir.parent / "demo" / "images.parquet")
    with labeling_app(pool_path, home / "images", home / "labels.sqlite", seed=0) as url:
        simulate(url, pl.read_parquet(pool_path), manifest)
    return store_events(home).select("labeler", "post_key", "kind", "value")


def test_the_same_seed_gives_the_same_labels_and_hidden_repeats(tmp_path, demo_images):
    first = _session(tmp_path / "a", demo_images)
    again = _session(tmp_path / "b", demo_images)
    assert first.height > 100 and first.equals(again)
    repeats = first.filter(pl.col("kind") == "label").group_by("labeler", "post_key").len()
    assert repeats["len"].max() > 1  # hidden repeats were served, at the same turns
