"""An evaluation set's images under a head: scores, and buckets by the head's frozen cut-points.

Scores are worked out again from the cached vectors each time they are read (a matrix
product per head), so a set evaluated under one head compares with a set evaluated under
another on the same head, and a new head needs no embedding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl

from assets.captions.buckets import Calibration, bucket_of
from assets.captions.calibration import from_record
from assets.embeddings.store import EmbeddingStore
from assets.evaluation.cache import aligned
from assets.head.artifact import BackboneMismatch, Head, require_backbone
from assets.head.registry import Registry
from orchestration.backbone import Identity

SCORED: dict[str, pl.DataType] = {
    "source": pl.String,
    "head": pl.String,
    "score": pl.Float64,
    "bucket": pl.Int32,
}


class NoHead(ValueError):
    """Nothing to score with: no active head and none named."""


def heads_for(registry: Registry, identity: Identity, named: Sequence[str]) -> list[Head]:
    """The active head, then each named one (a version or unique prefix), each made for this
    backbone; the active one is skipped, with the others, when made for another."""
    versions = [v for v in [registry.active_version(), *map(registry.resolve, named)] if v]
    heads = [registry.load(v) for v in dict.fromkeys(versions)]
    for head in heads:
        try:
            require_backbone(head, asdict(identity))
        except BackboneMismatch as e:
            raise NoHead(f"head {head.version} cannot score these images: {e}") from None
    if not heads:
        raise NoHead(
            "no head to score with: none is active (`scoretag head activate`, or let the "
            "pipeline train one), and none was named"
        )
    return heads


def frozen_calibrations(
    record_for: Callable[[str], Path], heads: Sequence[str]
) -> dict[str, Calibration | None]:
    """Each head's frozen cut-points, from the record the export keeps of them (None for a
    head never calibrated). Read there, not from the catalog, so that an evaluation (a GPU
    step) never holds the catalog's lock against its writers."""
    return {head: from_record(record_for(head), head) for head in heads}


@dataclass
class SetScores:
    """One set's embedded images under one head: rows (source, sha256, group, pair_key,
    prompt, seed, clip_score, score, bucket) and their float32 unit vectors."""

    name: str
    head: str
    rows: pl.DataFrame
    vectors: np.ndarray


def score(
    name: str,
    images: pl.DataFrame,
    store: EmbeddingStore,
    head: Head,
    calibration: Calibration | None,
) -> SetScores:
    """`images` (the set's images.parquet rows) scored by `head` from the cached vectors."""
    vectors, found = aligned(store, images["sha256"])
    if not found.all():
        missing = images.filter(pl.Series(~found))["source"].head(5).to_list()
        raise FileNotFoundError(
            f"set {name}: {int((~found).sum())} images have no cached vector (e.g. {missing}): "
            "evaluate the set again"
        )
    scores = head.predict(vectors).astype(np.float64)
    if calibration is None:
        bucket = pl.lit(None, pl.Int32)
    else:
        bucket = pl.Series(bucket_of(scores, np.asarray(calibration.starts)), dtype=pl.Int32)
    rows = images.with_columns(score=pl.Series(scores, dtype=pl.Float64), bucket=bucket)
    return SetScores(name, head.version, rows, vectors)
