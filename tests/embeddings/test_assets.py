"""embeddings as Dagster materializes it: failures listed, images embedded once, checks."""

from __future__ import annotations

import dagster as dg
import numpy as np
import polars as pl
from PIL import Image

from tests.embeddings.conftest import (
    E621_EXPORT,
    GELBOORU_INDEX,
    materialize,
    metadata,
    store_of,
)


def test_a_raw_file_is_embedded_with_its_failures_listed(scored_home, demo_layout):
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize(scored_home, E621_EXPORT, instance)
    assert result.success
    meta = metadata(result)
    assert (meta["requested"], meta["cached_hits"]) == (119, 0)
    assert (meta["embedded"], meta["failed"]) == (115, 4)
    assert meta["backbone_id"] == "scoretag-tiny__random-seed-0__3d24a6e2d2"
    assert meta["quality_signal"].startswith("none: random weights")
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(checks) == {"embeddings_vectors", "embeddings_complete"}
    assert all(c.passed for c in checks.values()), {n: c.description for n, c in checks.items()}

    store = store_of(scored_home)
    failures = store.failures()
    manifest = pl.read_parquet(demo_layout.home / "demo" / "images.parquet")
    expected = manifest.filter(pl.col("failure") != "").select(image_key="md5", want="failure")
    joined = failures.join(expected, on="image_key", how="left")
    assert joined["reason"].to_list() == joined["want"].to_list()
    assert sorted(joined["reason"]) == ["empty", "not_an_image", "too_large", "too_large"]
    assert all(p.startswith(str(scored_home.images)) for p in failures["path"])

    keys, vectors = store.read()
    assert keys.n_unique() == 115 and vectors.dtype == np.float16 and vectors.shape[1] == 64
    norms = np.linalg.norm(vectors.astype(np.float32), axis=1)
    assert np.allclose(norms, 1, atol=2e-3)


def test_a_stored_vector_is_what_open_clip_gives_for_the_picture(scored_home, demo_layout):
    from scoretag.benchmarks.embed import reference_transform

    with dg.DagsterInstance.ephemeral() as instance:
        materialize(scored_home, E621_EXPORT, instance)
    store = store_of(scored_home)
    keys, vectors = store.read()
    manifest = pl.read_parquet(demo_layout.home / "demo" / "images.parquet")
    plain = manifest.filter(
        (pl.col("special") == "") & pl.col("md5").is_in(keys.implode()) & (pl.col("mode") == "RGB")
    ).head(3)
    backbone = store.identity
    from orchestration.resources import BackboneResource
    from orchestration.settings import load_settings

    model = BackboneResource.from_settings(load_settings("demo").backbone).load().model
    transform = reference_transform(backbone)
    import torch

    for row in plain.iter_rows(named=True):
        picture = Image.open(demo_layout.images / row["file_name"]).convert("RGB")
        with torch.inference_mode():
            expected = torch.nn.functional.normalize(
                model.encode_image(transform(picture).unsqueeze(0)).float(), dim=-1
            )[0].numpy()
        got = vectors[keys.to_list().index(row["md5"])].astype(np.float32)
        assert float(got @ expected) > 0.99, row["file_name"]


def test_images_are_embedded_once_across_runs_and_raw_files(scored_home):
    with dg.DagsterInstance.ephemeral() as instance:
        materialize(scored_home, E621_EXPORT, instance)
        store = store_of(scored_home)
        shards = {p: p.stat().st_mtime_ns for p in store.shards()}
        embedded = set(store.keys().to_list())

        again = metadata(materialize(scored_home, E621_EXPORT, instance))
        assert (again["cached_hits"], again["embedded"]) == (115, 0)
        assert again["failed"] == 4  # unusable files are tried again: they may be fixed
        assert {p: p.stat().st_mtime_ns for p in store.shards()} == shards

        result = materialize(scored_home, GELBOORU_INDEX, instance)
        assert result.success
        other = metadata(result)
        requested = pl.read_parquet(store.requested_path(GELBOORU_INDEX))["image_key"]
        shared = len(embedded & set(requested.to_list()))
        assert shared == 5 and other["cached_hits"] == shared
        assert other["embedded"] + other["failed"] == other["requested"] - shared
        assert store.keys().n_unique() == store.keys().len()


def test_broken_vectors_fail_the_blocking_check(scored_home):
    with dg.DagsterInstance.ephemeral() as instance:
        materialize(scored_home, E621_EXPORT, instance)
        store = store_of(scored_home)
        keys, vectors = store.read()
        bad = vectors[:2].copy()
        bad[0, 0] = np.nan
        store.write_shard(E621_EXPORT, keys[:2].to_list(), bad)  # NaN and two duplicates
        result = materialize(scored_home, E621_EXPORT, instance)
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    evaluation = checks["embeddings_vectors"]
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert "non_finite" in evaluation.description and "duplicate_keys" in evaluation.description
