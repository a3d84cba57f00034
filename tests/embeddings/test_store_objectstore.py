"""The embedding store on object storage (fsspec's memory://, standing for s3:// or gs://):
shards, failures and requested keys written whole and read back as on a local disk."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from assets.embeddings.store import FAILURES, EmbeddingStore, IdentityMismatch
from orchestration import objectstore
from orchestration.storage import Layout
from tests.conftest import tables_to_object_root
from tests.embeddings.conftest import TINY, unit_vectors


def test_shards_round_trip_on_object_storage(memory_root: str):
    store = EmbeddingStore(memory_root, TINY).ensure()
    assert objectstore.is_remote(store.dir) and store.url.startswith("memory://")
    assert (store.dir / "identity.json").read_text() == TINY.to_json()
    first = store.write_shard("danbooru/a.json", ["k1", "k2"], unit_vectors(2))
    second = store.write_shard("danbooru/a.json", ["k3"], unit_vectors(1, 1))
    store.write_shard("e621/b.csv", ["k4"], unit_vectors(1, 2))
    assert [first.name, second.name] == ["part-00000.parquet", "part-00001.parquet"]
    assert store.keys("danbooru/a.json").to_list() == ["k1", "k2", "k3"]
    keys, vectors = store.read()
    assert keys.to_list() == ["k1", "k2", "k3", "k4"]
    expected = np.concatenate([unit_vectors(2), unit_vectors(1, 1), unit_vectors(1, 2)])
    assert np.array_equal(vectors, expected)
    found, picked = store.lookup(pl.Series(["k4", "k2", "nope"]))
    assert sorted(found.to_list()) == ["k2", "k4"]
    assert np.array_equal(picked[found.to_list().index("k4")], unit_vectors(1, 2)[0])
    assert np.array_equal(store.vectors(second), unit_vectors(1, 1))
    assert store.schema(first).field("embedding").type.byte_width == 2 * TINY.embed_dim


def test_another_backbone_is_refused_on_object_storage(memory_root: str):
    store = EmbeddingStore(memory_root, TINY).ensure()
    shard = store.write_shard("e621/x.csv", ["k"], unit_vectors(1))
    other = replace(TINY, weights="random:seed=1")
    (store.dir / "identity.json").write_text(other.to_json())
    with pytest.raises(IdentityMismatch):
        store.ensure()
    with pytest.raises(IdentityMismatch):
        EmbeddingStore(memory_root, other).read([shard])


def test_a_shard_that_fails_mid_write_leaves_no_object(memory_root: str, monkeypatch):
    store = EmbeddingStore(memory_root, TINY).ensure()
    store.write_shard("p/q", ["a"], unit_vectors(1))

    def crash(table, where, **kwargs):
        where.write(b"PAR1 half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(pq, "write_table", crash)
    with pytest.raises(KeyboardInterrupt):
        store.write_shard("p/q", ["b"], unit_vectors(1))
    assert [p.name for p in store.shard_dir("p/q").glob("*")] == ["part-00000.parquet"]
    assert store.keys().to_list() == ["a"]
    assert store.remove_orphans("p/q") == []


def test_failures_and_requested_keys_live_beside_the_shards(memory_root: str):
    store = EmbeddingStore(memory_root, TINY).ensure()
    assert store.requested("e621/x.csv") is None
    assert store.failures().is_empty() and store.partition_failures("e621/x.csv").is_empty()
    store.write_requested("e621/x.csv", pl.DataFrame({"image_key": ["a", "b"]}))
    failed = (
        pl.DataFrame(
            {"image_key": ["b"], "path": ["/i/b.png"], "reason": ["corrupt"], "detail": ["x"]}
        )
        .with_columns(failed_at=pl.lit(None))
        .cast(FAILURES)
    )
    store.write_failures("e621/x.csv", failed)
    assert store.requested("e621/x.csv")["image_key"].to_list() == ["a", "b"]
    assert store.requested_path("e621/x.csv").is_file()
    assert store.failures().equals(failed)
    assert store.partition_failures("e621/x.csv")["reason"].to_list() == ["corrupt"]


def test_the_layout_puts_only_the_shared_stages_under_the_object_root(tmp_path, memory_root):
    local = Layout(home=tmp_path)
    assert local.shared_stage_dir("embeddings") == tmp_path / "data" / "embeddings"
    shared = Layout(home=tmp_path, object_root=memory_root)
    assert (
        objectstore.url(shared.shared_stage_dir("embeddings")) == f"{memory_root}/data/embeddings"
    )
    assert shared.stage_dir("embeddings") == tmp_path / "data" / "embeddings"
    assert shared.catalog == tmp_path / "catalog.duckdb"  # DuckDB writes a local file


def test_the_asset_and_its_checks_run_against_object_storage(scored_home, memory_root, monkeypatch):
    import dagster as dg

    from tests.embeddings.conftest import E621_EXPORT, materialize, metadata, store_of

    tables_to_object_root(scored_home, memory_root)
    monkeypatch.setenv("SCORETAG_OBJECT_ROOT", memory_root)
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize(scored_home, E621_EXPORT, instance)
    assert result.success
    meta = metadata(result)
    assert (meta["embedded"], meta["failed"]) == (115, 4)
    assert meta["store"].startswith(f"{memory_root}/data/embeddings/")
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"embeddings_vectors": True, "embeddings_complete": True}
    store = store_of(replace(scored_home, object_root=memory_root))
    assert objectstore.is_remote(store.dir)
    assert store.keys().n_unique() == 115 and store.requested(E621_EXPORT).height == 119
    assert not (scored_home.data / "embeddings").exists()  # nothing went to the local disk
