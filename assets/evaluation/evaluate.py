"""One evaluation set, start to end: find its images and prompts, embed what the cache lacks,
score under each head, measure, and write the results (see assets/evaluation/paths.py).

The backbone is loaded only when something is missing from the cache: a set evaluated again,
under a new head or not, is scored from cached vectors alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from assets.captions.buckets import Calibration
from assets.embeddings.embed import Plan, Progress
from assets.embeddings.store import EmbeddingStore
from assets.evaluation import cache, stats
from assets.evaluation.paths import results_dir
from assets.evaluation.scoring import SCORED, SetScores, score
from assets.evaluation.sets import PROBLEMS, find_set
from assets.head.artifact import Head
from orchestration.atomic import write_bytes, write_parquet
from orchestration.backbone import Backbone, Identity
from orchestration.objectstore import Location
from orchestration.storage import Layout

IMAGE_COLUMNS = ["source", "path", "sha256", "prompt", "seed", "group", "pair_key"]
IMAGES: dict[str, pl.DataType] = {
    "source": pl.String,
    "path": pl.String,
    "sha256": pl.String,
    "prompt": pl.String,
    "seed": pl.Int64,
    "group": pl.String,
    "pair_key": pl.String,
    "prompt_source": pl.String,
    "clip_score": pl.Float64,
}


@dataclass(frozen=True)
class Caches:
    """The backbone's caches of image and prompt vectors."""

    images: EmbeddingStore
    prompts: EmbeddingStore

    @classmethod
    def at(
        cls,
        stage_dir: str | Location,
        identity: Identity,
        provenance: dict[str, str] | None = None,
    ) -> Caches:
        """The caches in the embeddings stage folder `stage_dir`."""
        return cls(
            cache.image_cache(stage_dir, identity, provenance),
            cache.prompt_cache(stage_dir, identity, provenance),
        )


@dataclass
class Evaluation:
    """What evaluating one set found and did."""

    name: str
    found: int  # image files under the set's folder
    images: pl.DataFrame  # IMAGES rows: the images scored
    failures: pl.DataFrame  # PROBLEMS rows: the images not scored, and bad prompt lines
    scores: dict[str, SetScores]  # per head version, the active head's first
    embedded: int = 0  # images embedded by this evaluation
    cached: int = 0  # distinct images scored from vectors cached before
    prompts_embedded: int = 0
    seconds: float = 0.0
    summaries: dict[str, dict] = field(default_factory=dict)

    @property
    def failed_images(self) -> int:
        return int((self.failures["reason"] != "bad_prompt").sum())


def _failures(problems: pl.DataFrame, images: pl.DataFrame, store: EmbeddingStore) -> pl.DataFrame:
    """The set's problems, and its images whose decoding failed (in this set or any other:
    an image is tried once)."""
    failed = store.failures().unique("image_key", keep="last")
    decoded = images.join(failed, left_on="sha256", right_on="image_key", how="inner").select(
        "source", "path", "reason", "detail"
    )
    return pl.concat([problems, decoded.cast(PROBLEMS)]).sort("source")


def evaluate_set(
    name: str,
    root: Path,
    caches: Caches,
    backbone: Callable[[], Backbone],
    plan: Plan,
    heads: list[Head],
    calibrations: dict[str, Calibration | None],
    good_bucket: int,
    on_batch: Callable[[Progress], None] = lambda p: None,
) -> Evaluation:
    """Evaluate the set `name` at `root`; `backbone()` loads the model, called only when the
    cache lacks an image or a prompt."""
    found, problems = find_set(root)
    todo = cache.missing_images(found, caches.images)
    prompts = cache.missing_prompts(found["prompt"], caches.prompts)
    loaded = backbone() if todo.height or prompts.height else None
    progress = Progress(total=0)
    if todo.height:
        progress = cache.embed_images(todo, loaded, caches.images, name, plan, on_batch)
    prompts_embedded = cache.embed_prompts(prompts, loaded, caches.prompts, name)

    failures = _failures(problems, found, caches.images)
    scored = found.join(failures.select("source"), on="source", how="anti")
    image_vectors, _ = cache.aligned(caches.images, scored["sha256"])
    keys = cache.prompt_keys(scored["prompt"])
    prompt_vectors, has_prompt = cache.aligned(caches.prompts, keys)
    clip = np.where(has_prompt, cache.clip_scores(image_vectors, prompt_vectors), np.nan)
    images = scored.with_columns(clip_score=pl.Series(clip).fill_nan(None)).select(list(IMAGES))
    evaluation = Evaluation(
        name=name,
        found=found.height + int((problems["reason"] != "bad_prompt").sum()),
        images=images.cast(IMAGES),
        failures=failures,
        scores={
            head.version: score(name, images, caches.images, head, calibrations.get(head.version))
            for head in heads
        },
        embedded=progress.embedded,
        cached=scored["sha256"].n_unique() - progress.embedded,
        prompts_embedded=prompts_embedded,
        seconds=progress.seconds,
    )
    evaluation.summaries = {
        version: stats.set_summary(s.rows, s.vectors, good_bucket)
        for version, s in evaluation.scores.items()
    }
    return evaluation


def score_rows(evaluation: Evaluation) -> pl.DataFrame:
    """SCORED rows: each scored image under each head."""
    frames = [
        s.rows.select("source", head=pl.lit(version), score="score", bucket="bucket")
        for version, s in evaluation.scores.items()
    ]
    return pl.concat(frames).cast(SCORED) if frames else pl.DataFrame(schema=SCORED)


def write(evaluation: Evaluation, out: Path, extra: dict) -> None:
    """The set's results under `out`; summary.json last (readers take it as the marker)."""
    write_parquet(evaluation.images, out / "images.parquet")
    write_parquet(score_rows(evaluation), out / "scores.parquet")
    write_parquet(evaluation.failures, out / "failures.parquet")
    summary = {
        "name": evaluation.name,
        "found": evaluation.found,
        "scored": evaluation.images.height,
        "failed": evaluation.failed_images,
        "heads": evaluation.summaries,
        **extra,
    }
    write_bytes(out / "summary.json", (json.dumps(summary, indent=2) + "\n").encode())


def read_images(out: Path) -> pl.DataFrame:
    """A set's scored images (IMAGES rows), as its last evaluation wrote them."""
    path = out / "images.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"{out.name} has not been evaluated yet (no {path})")
    return pl.read_parquet(path)


def read_summary(out: Path) -> dict:
    """A set's summary.json, as its last evaluation wrote it."""
    path = out / "summary.json"
    if not path.is_file():
        raise FileNotFoundError(f"{out.name} has not been evaluated yet (no {path})")
    return json.loads(path.read_text())


def scored_sets(
    layout: Layout,
    names: list[str],
    caches: Caches,
    head: Head,
    calibration: Calibration | None,
) -> list[SetScores]:
    """Evaluated sets scored by `head` from their cached vectors."""
    return [
        score(name, read_images(results_dir(layout, name)), caches.images, head, calibration)
        for name in names
    ]
