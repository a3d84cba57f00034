"""The catalog scored from embedding shards on object storage (fsspec's memory://, standing for
s3:// or gs://): the same scores as from a local store, and the blocking check's DuckDB query
reads the shards there."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from assets.catalog.checks import scored_catalog_suite
from assets.catalog.writer import open_catalog, refresh_posts, score_missing, sync_heads
from assets.embeddings.assets import store_for
from assets.embeddings.store import EmbeddingStore
from assets.head.artifact import build_card
from assets.head.models import fit_ridge
from assets.head.paths import registry
from orchestration import objectstore
from orchestration.profile import load_profile
from orchestration.resources import BackboneResource, ScoretagResource

NOW = datetime(2026, 11, 21, tzinfo=UTC)
PARTITIONS = ("e621/x.csv", "danbooru/y.json")


def _posts(n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "post_key": [f"e621:{i}" for i in range(n)],
            "site": "e621",
            "post_id": list(range(n)),
            "image_key": [f"{i % 150:032x}" for i in range(n)],  # some posts share an image
            "rating": "s",
            "norm_score": [((i * 37) % 100) / 100 for i in range(n)],
            "is_canonical": True,
            "tags": [["tag_a"] for _ in range(n)],
            "loaded_at": NOW,
        }
    )


def _fill(store: EmbeddingStore) -> np.ndarray:
    """150 unit vectors in two partitions' shards."""
    v = np.random.default_rng(0).normal(size=(150, store.identity.embed_dim))
    vectors = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float16)
    store.ensure()
    store.write_shard(PARTITIONS[0], [f"{i:032x}" for i in range(100)], vectors[:100])
    store.write_shard(PARTITIONS[1], [f"{i:032x}" for i in range(100, 150)], vectors[100:])
    return vectors


@pytest.fixture
def shared_home(tmp_path, memory_root):
    """A demo storage root whose embeddings are on object storage, with an active head."""
    profile = load_profile("demo", tmp_path / "home", object_root=memory_root)
    resources = {
        "scoretag": ScoretagResource.for_profile(profile),
        "backbone": BackboneResource.from_settings(profile.settings.backbone),
    }
    store = store_for(profile.layout, resources["backbone"])
    vectors = _fill(store)
    heads = registry(profile.layout)
    net = fit_ridge(vectors.astype(np.float32), np.random.default_rng(0).random(150)).net()
    version = heads.save(net, build_card(net, backbone={}, head_type="ridge", seed=0)).version
    heads.activate(version, "test")
    return profile, resources, store, heads


def _score(path, store: EmbeddingStore, heads, posts: pl.DataFrame) -> pl.DataFrame:
    with open_catalog(path) as con:
        refresh_posts(con, posts)
        done = score_missing(con, heads.load(sync_heads(con, heads)), store)
        assert done.scored == posts.height
        return pl.from_arrow(con.execute("SELECT post_key, score FROM scores").arrow())


def test_scores_from_object_storage_equal_those_from_a_local_store(shared_home, tmp_path):
    profile, _, remote, heads = shared_home
    assert objectstore.is_remote(remote.dir)
    local = EmbeddingStore(tmp_path / "local", remote.identity)
    _fill(local)
    posts = _posts(200)
    from_remote = _score(profile.layout.catalog, remote, heads, posts)
    from_local = _score(tmp_path / "local.duckdb", local, heads, posts)
    assert from_remote.sort("post_key").equals(from_local.sort("post_key"))
    with open_catalog(profile.layout.catalog) as con:
        read = [
            r[0] for r in con.execute("SELECT shard FROM head_shards ORDER BY shard").fetchall()
        ]
        refresh_posts(con, _posts(210))
        again = score_missing(con, heads.load(sync_heads(con, heads)), remote)
    # The cursor names shards relative to the store, wherever the store is.
    assert read == [f"shards/{p}/part-00000.parquet" for p in sorted(PARTITIONS)]
    assert (again.requested, again.scored) == (10, 10)


def test_the_catalog_check_reads_the_shards_on_object_storage(shared_home):
    profile, resources, store, heads = shared_home
    _score(profile.layout.catalog, store, heads, _posts(200))
    result = scored_catalog_suite(**resources)
    assert result.passed, result.description
    assert result.metadata["scored"].value == 200
    assert result.metadata["embedded_posts_unscored"].value == 0
    # A post whose image is embedded but unscored is seen through the remote shards.
    with open_catalog(profile.layout.catalog) as con:
        con.execute("DELETE FROM scores WHERE post_key = 'e621:5'")
    result = scored_catalog_suite(**resources)
    assert not result.passed
    assert result.metadata["embedded_posts_unscored"].value == 1
