"""A storage root as the pipeline leaves it just before scored_catalog: the demo's posts and
normalized scores (`scored_home`), embeddings of most of its images, and an active head made
for the demo's backbone. Embeddings are drawn, not computed: scoring is what is tested here."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from assets.catalog.assets import scored_catalog
from assets.catalog.checks import scored_catalog_suite
from assets.embeddings.assets import store_for
from assets.head.artifact import build_card
from assets.head.models import fit_ridge
from assets.head.paths import registry
from assets.normalize.assets import read_scores
from orchestration.profile import load_profile
from orchestration.resources import BackboneResource, ScoretagResource
from orchestration.storage import Layout

SHARD_ROWS = 100
PARTITION = "danbooru/posts-drawn.json"


def resources(home: Path, config: Path | None = None) -> dict:
    profile = load_profile("demo", home, config)
    return {
        "scoretag": ScoretagResource.for_profile(profile, profile.config),
        "backbone": BackboneResource.from_settings(profile.settings.backbone),
    }


def store_of(layout: Layout):
    return store_for(layout, resources(layout.home)["backbone"])


def materialize_catalog(
    home: Path,
    config: Path | None = None,
    instance: dg.DagsterInstance | None = None,
    checks: bool = True,
) -> dg.ExecuteInProcessResult:
    """scored_catalog (and its suite), as the main job runs them."""
    return dg.materialize(
        [scored_catalog, *([scored_catalog_suite] if checks else [])],
        resources=resources(home, config),
        instance=instance,
        raise_on_error=False,
    )


def catalog_scores(path: Path) -> pl.DataFrame:
    """What a reader sees of the scores: (post_key, head_version, score, percentile), sorted."""
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        frame = con.execute(
            "SELECT post_key, head_version, score, percentile FROM scores ORDER BY ALL"
        ).pl()
    return frame


def _draw_embeddings(layout: Layout) -> np.ndarray:
    """Unit vectors for nine in ten of the demo's images (the rest wait for theirs), in
    shards of SHARD_ROWS, as the embeddings asset would have written them."""
    keys = read_scores(layout, ["image_key"])["image_key"].unique().sort().to_list()
    keys = [k for i, k in enumerate(keys) if i % 10]
    store = store_of(layout).ensure()
    vectors = np.random.default_rng(0).normal(size=(len(keys), store.identity.embed_dim))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float16)
    for start in range(0, len(keys), SHARD_ROWS):
        end = start + SHARD_ROWS
        store.write_shard(PARTITION, keys[start:end], vectors[start:end])
    return vectors


@pytest.fixture
def catalog_home(scored_home: Layout) -> Layout:
    vectors = _draw_embeddings(scored_home).astype(np.float32)
    target = np.clip(0.5 + vectors[:, 0] + 0.1 * vectors[:, 1], 0, 1)
    net = fit_ridge(vectors, target).net()
    backbone = asdict(store_of(scored_home).identity)
    card = build_card(net, backbone=backbone, head_type="ridge", seed=0)
    heads = registry(scored_home)
    heads.activate(heads.save(net, card).version, "passed the gate in a test", by="gate")
    return scored_home
