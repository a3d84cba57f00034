"""What makes compare mode's pairs more informative, when it exists: the pool's image vectors
(near-duplicates are never paired) and the active head's predicted scores of them (close
scores are the informative comparisons), both of the pool as it was when the app started.
Both are optional: without an embedding store or an active head, pairs come from strata.

Scores are the active head's predictions on the pool's vectors, worked out here rather than
read from the catalog, so the app never waits on (or holds) the catalog's lock.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import polars as pl

from orchestration.settings import Settings
from orchestration.storage import Layout


@dataclass(frozen=True)
class PairInputs:
    vectors: tuple[list[str], np.ndarray] | None  # post keys, unit rows
    scores: pl.DataFrame | None  # post_key, score
    note: str  # what was found, for the person starting the app


def pool_vectors(pool: pl.DataFrame, found: pl.Series, vectors: np.ndarray) -> tuple:
    """Each pool post's unit image vector (posts sharing an image share it) from the
    store's (image_key, vector) rows; posts without one are left out."""
    rows = pl.DataFrame({"image_key": found, "row": np.arange(found.len())})
    joined = pool.select("post_key", "image_key").join(rows, on="image_key", how="inner")
    matrix = np.asarray(vectors[joined["row"].to_numpy()], dtype=np.float32)
    matrix = matrix.reshape(joined.height, vectors.shape[-1])
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return joined["post_key"].to_list(), matrix / np.where(norms > 0, norms, 1.0)


def load(layout: Layout, settings: Settings, pool: pl.DataFrame) -> PairInputs:
    """The pool's vectors and the active head's scores, or None for what is missing."""
    from assets.embeddings.assets import STAGE
    from assets.embeddings.store import EmbeddingStore
    from orchestration.backbone import identity, provenance

    try:
        backbone = settings.backbone
        store = EmbeddingStore(
            layout.shared_stage_dir(STAGE), identity(backbone), provenance(backbone)
        )
        keys, matrix = pool_vectors(pool, *store.lookup(pool["image_key"]))
    except (OSError, ValueError) as e:
        return PairInputs(None, None, f"no image vectors ({e}): pairs from strata only")
    if not keys:
        return PairInputs(None, None, "no image vectors yet: pairs from strata only")
    from assets.head.artifact import BackboneMismatch, require_backbone
    from assets.head.paths import registry  # torch: only once there is something to score

    head = registry(layout).active()
    note = f"{len(keys)} image vectors; no active head of this backbone: no scores"
    if head is None or head.input_dim != matrix.shape[1]:
        return PairInputs((keys, matrix), None, note)
    try:
        require_backbone(head, asdict(store.identity))
    except BackboneMismatch:
        return PairInputs((keys, matrix), None, note)
    scores = pl.DataFrame({"post_key": keys, "score": head.predict(matrix)})
    note = f"{len(keys)} image vectors, scores of head {head.version}"
    return PairInputs((keys, matrix), scores, note)
