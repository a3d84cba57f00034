"""The embedding store: fp16 unit vectors per backbone, whole shards only, identity checked."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from assets.embeddings.store import IDENTITY_KEY, EmbeddingStore, IdentityMismatch
from tests.embeddings.conftest import TINY, unit_vectors


def test_shards_read_back_exactly_with_their_identity(tmp_path: Path):
    store = EmbeddingStore(tmp_path, TINY).ensure()
    first = store.write_shard("danbooru/a.json", ["k1", "k2"], unit_vectors(2))
    second = store.write_shard("danbooru/a.json", ["k3"], unit_vectors(1, 1))
    assert [first.name, second.name] == ["part-00000.parquet", "part-00001.parquet"]
    keys, vectors = store.read()
    assert keys.to_list() == ["k1", "k2", "k3"]
    assert np.array_equal(vectors, np.concatenate([unit_vectors(2), unit_vectors(1, 1)]))
    assert store.keys("danbooru/a.json").to_list() == ["k1", "k2", "k3"]
    schema = pq.read_schema(first)
    assert str(schema.field("embedding").type) == f"fixed_size_binary[{2 * TINY.embed_dim}]"
    assert schema.metadata[IDENTITY_KEY] == TINY.to_json().encode()


def test_another_backbone_cannot_share_a_folder_or_a_shard(tmp_path: Path):
    store = EmbeddingStore(tmp_path, TINY).ensure()
    shard = store.write_shard("e621/x.csv", ["k"], unit_vectors(1))
    other = replace(TINY, weights="random:seed=1")
    assert EmbeddingStore(tmp_path, other).dir != store.dir
    (store.dir / "identity.json").write_text(other.to_json())
    with pytest.raises(IdentityMismatch):
        store.ensure()
    foreign = EmbeddingStore(tmp_path / "elsewhere", other).ensure()
    with pytest.raises(IdentityMismatch):
        foreign.read([shard])


def test_wrong_vectors_are_refused(tmp_path: Path):
    store = EmbeddingStore(tmp_path, TINY).ensure()
    with pytest.raises(ValueError, match="float16"):
        store.write_shard("p/q", ["a"], unit_vectors(1).astype(np.float32))
    with pytest.raises(ValueError, match="expected 2"):
        store.write_shard("p/q", ["a", "b"], unit_vectors(1))


def test_a_shard_that_fails_mid_write_leaves_nothing_visible(tmp_path: Path, monkeypatch):
    store = EmbeddingStore(tmp_path, TINY).ensure()
    store.write_shard("p/q", ["a"], unit_vectors(1))

    def crash(table, where, **kwargs):
        Path(where).write_bytes(b"PAR1 half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(pq, "write_table", crash)
    with pytest.raises(KeyboardInterrupt):
        store.write_shard("p/q", ["b"], unit_vectors(1))
    folder = store.shard_dir("p/q")
    assert sorted(p.name for p in folder.iterdir()) == ["part-00000.parquet"]
    assert store.keys().to_list() == ["a"]


def test_only_the_temporaries_of_dead_writers_are_removed(tmp_path: Path):
    from orchestration.atomic import remove_orphans

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    orphan = tmp_path / f".part-00003.parquet.{dead.stdout.strip()}.tmp"
    mine = tmp_path / f".part-00004.parquet.{os.getpid()}.tmp"
    for path in (orphan, mine):
        path.write_bytes(b"partial")
    assert remove_orphans(tmp_path) == [orphan]
    assert mine.exists() and not orphan.exists()
    assert remove_orphans(tmp_path / "absent") == []
