"""Running the embeddings asset (with its checks) on one raw file of the demo."""

from __future__ import annotations

import dagster as dg
import numpy as np

from assets.embeddings.assets import embeddings, store_for
from assets.embeddings.checks import embeddings_complete, embeddings_vectors
from assets.ingest.assets import raw_files
from orchestration.backbone import identity
from orchestration.profile import load_profile
from orchestration.resources import BackboneResource, ScoretagResource
from orchestration.settings import BackboneSettings
from orchestration.storage import Layout

CHECKS = [embeddings_vectors, embeddings_complete]
TINY = identity(BackboneSettings(model="scoretag-tiny", pretrained=""))
E621_EXPORT = "e621/posts-2026-11-01.csv.gz"  # 119 images, 4 of them unusable
GELBOORU_INDEX = "gelbooru/index-2017-06-03.xml"  # shares 5 images with the e621 export
DANBOORU_DUMP = "danbooru/danbooru2021-posts000000000000.jsonl"  # 152 images


def unit_vectors(n: int, seed: int = 0) -> np.ndarray:
    """n random unit vectors of TINY's width, in float16 as the store keeps them."""
    v = np.random.default_rng(seed).normal(size=(n, TINY.embed_dim))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float16)


def resources(layout: Layout, batch_size: int = 32) -> dict:
    profile = load_profile("demo", layout.home)
    settings = profile.settings.backbone.model_copy(update={"batch_size": batch_size})
    return {
        "scoretag": ScoretagResource.for_profile(profile),
        "backbone": BackboneResource.from_settings(settings),
    }


def materialize(
    layout: Layout,
    partition: str,
    instance: dg.DagsterInstance,
    selection=None,
    batch_size: int = 32,
    **config,
) -> dg.ExecuteInProcessResult:
    instance.add_dynamic_partitions(raw_files.name, [partition])
    return dg.materialize(
        [embeddings, *CHECKS],
        partition_key=partition,
        resources=resources(layout, batch_size),
        instance=instance,
        selection=selection,
        run_config={"ops": {"embeddings": {"config": {"workers": 1, **config}}}},
        raise_on_error=False,
    )


def store_of(layout: Layout):
    return store_for(layout, resources(layout)["backbone"])


def metadata(result: dg.ExecuteInProcessResult) -> dict:
    (mat,) = result.asset_materializations_for_node("embeddings")
    return {k: v.value for k, v in mat.metadata.items()}
