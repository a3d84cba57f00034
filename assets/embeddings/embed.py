"""Embed what is not embedded yet: decode in workers, encode in batches, commit shards.

A run writes a shard every `shard_size` embeddings, so a run killed at any moment loses at
most the shard in flight: the next run finds the committed shards' keys in the store and
starts after them. Failures are collected and returned; the caller records them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import torch

from assets.embeddings.dataset import Batch, ImageFiles, batches, resolve_workers
from assets.embeddings.encode import Encoder
from assets.embeddings.preprocess import Geometry
from assets.embeddings.store import FAILURES, WRITE_OPTIONS, EmbeddingStore, embedding_table
from orchestration.atomic import atomic_path
from orchestration.backbone import Backbone
from orchestration.threads import torch_threads

# Workers decode in chunks smaller than a model batch: the first batch is ready sooner and
# the last images are spread over every worker instead of waiting on one.
DECODE_CHUNK = 32


def grouped(chunks: Iterable[Batch], size: int) -> Iterator[list[Batch]]:
    """Decoded chunks gathered until they hold `size` images (the last group may hold fewer)."""
    group: list[Batch] = []
    count = 0
    for chunk in chunks:
        group.append(chunk)
        count += len(chunk.positions)
        if count >= size:
            yield group
            group, count = [], 0
    if group:
        yield group


@dataclass(frozen=True)
class Plan:
    """How one run reads and batches."""

    batch_size: int = 256
    workers: int = 2
    prefetch: int = 4
    shard_size: int = 8192
    max_pixels: int = 89_478_485
    jpeg_draft: bool = False  # decode JPEGs at a reduced scale ([embed] jpeg_draft)


@dataclass
class Progress:
    """What a run did so far; `on_batch` receives it after every batch."""

    total: int
    embedded: int = 0
    failed: int = 0
    shards: list = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    @property
    def done(self) -> int:
        return self.embedded + self.failed

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started

    @property
    def images_per_s(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the rate so far (None before the first image)."""
        rate = self.images_per_s
        return (self.total - self.done) / rate if rate > 0 else None


class _ShardBuffer:
    """Embeddings waiting to fill a shard."""

    def __init__(self, store: EmbeddingStore, partition: str, size: int):
        self.store, self.partition, self.size = store, partition, size
        self.keys: list[str] = []
        self.vectors: list[np.ndarray] = []

    def add(self, keys: list[str], vectors: np.ndarray, progress: Progress) -> None:
        self.keys += keys
        self.vectors.append(vectors)
        if len(self.keys) >= self.size:
            self.flush(progress)

    def flush(self, progress: Progress) -> None:
        if self.keys:
            path = self.store.write_shard(self.partition, self.keys, np.concatenate(self.vectors))
            progress.shards.append(path)
            self.keys, self.vectors = [], []


CALIBRATION_IMAGES = 8


def _model_threads(encoder: Encoder, dataset: ImageFiles, workers: int) -> int:
    """On a CPU the model's threads and the decoding workers share the cores. A few images,
    decoded and encoded here first, tell which side is slower: when decoding is (a small
    model), the model gets the cores the workers leave, so that they do not fight over them;
    when the model is, it gets them all."""
    cores = resolve_workers("auto")
    few = max(1, cores - workers)
    sample = np.unique(np.linspace(0, len(dataset) - 1, CALIBRATION_IMAGES).astype(int))
    started = time.perf_counter()
    pixels = [p for _, p, _, _ in (dataset[int(i)] for i in sample) if p is not None]
    decode_s = (time.perf_counter() - started) / len(sample)
    if not pixels:
        return few
    batch = torch.from_numpy(np.stack(pixels[:4]))  # a few: a large model is slow on a CPU
    with torch_threads(few):
        encoder([batch])  # the first call pays one-off costs
        started = time.perf_counter()
        encoder([batch])
        model_s = (time.perf_counter() - started) / len(batch)
    return cores if model_s > decode_s / workers else few


def encoded(
    locations: pl.DataFrame, backbone: Backbone, plan: Plan
) -> Iterator[tuple[np.ndarray, np.ndarray, list[tuple[int, str, str]]]]:
    """The images at `locations` (path, offset, length) through the backbone, a model batch
    at a time: (positions of the decoded images, their unit fp16 vectors, failures as
    (position, reason, detail))."""
    geometry = Geometry.of(backbone.identity, draft=plan.jpeg_draft)
    dataset = ImageFiles(locations, geometry, plan.max_pixels)
    encoder = Encoder(backbone)
    chunk = min(plan.batch_size, DECODE_CHUNK)
    loader = batches(
        dataset, chunk, plan.workers, plan.prefetch, pin=backbone.device.startswith("cuda")
    )
    share_cores = backbone.device == "cpu" and plan.workers
    with torch_threads(_model_threads(encoder, dataset, plan.workers) if share_cores else None):
        for group in grouped(loader, plan.batch_size):
            positions = np.concatenate([c.positions for c in group])
            vectors = encoder([c.pixels for c in group if len(c.positions)])
            yield positions, vectors, [f for c in group for f in c.failures]


def embed(
    todo: pl.DataFrame,
    backbone: Backbone,
    store: EmbeddingStore,
    partition: str,
    plan: Plan,
    on_batch: Callable[[Progress], None] = lambda p: None,
) -> tuple[Progress, pl.DataFrame]:
    """Embed the images of `todo` (LOCATION rows, one per image_key) into shards of
    `partition`; returns the progress and the failures (FAILURES rows)."""
    progress = Progress(total=todo.height)
    failures: list[tuple] = []
    if todo.height == 0:
        return progress, pl.DataFrame(schema=FAILURES)
    store.ensure()
    store.remove_orphans(partition)  # the shard a killed run had in flight
    keys = todo["image_key"].to_numpy()
    buffer = _ShardBuffer(store, partition, plan.shard_size)
    for positions, vectors, failed in encoded(todo, backbone, plan):
        buffer.add(keys[positions].tolist(), vectors, progress)
        failures += [(str(keys[i]), reason, detail) for i, reason, detail in failed]
        progress.failed += len(failed)
        progress.embedded += len(positions)
        on_batch(progress)
    buffer.flush(progress)
    return progress, _failure_rows(todo, failures)


FILE_FAILURES: dict[str, pl.DataType] = {
    "image_key": pl.String,
    "path": pl.String,
    "reason": pl.String,
    "detail": pl.String,
}


def embed_to_file(
    images: pl.DataFrame,
    backbone: Backbone,
    plan: Plan,
    out: Path,
    on_batch: Callable[[Progress], None] = lambda p: None,
) -> tuple[Progress, pl.DataFrame]:
    """Embed `images` (LOCATION rows and `source`) into one parquet file laid out as a shard
    (`image_key`, `path`: the source, `embedding`; the identity in its metadata), a row group
    every `plan.shard_size` images, written whole or not at all. Returns the progress and the
    failures (FILE_FAILURES rows, in input order)."""
    progress = Progress(total=images.height)
    keys, sources = images["image_key"].to_numpy(), images["source"].to_numpy()
    failed: list[tuple[int, str, str]] = []
    empty = embedding_table(
        backbone.identity,
        np.empty((0, backbone.identity.embed_dim), np.float16),
        backbone.provenance,
        image_key=[],
        path=[],
    )
    with atomic_path(out) as tmp, pq.ParquetWriter(tmp, empty.schema, **WRITE_OPTIONS) as writer:
        held: list[tuple[np.ndarray, np.ndarray]] = []

        def flush() -> None:
            if held:
                positions = np.concatenate([p for p, _ in held])
                vectors = np.concatenate([v for _, v in held])
                writer.write_table(
                    embedding_table(
                        backbone.identity,
                        vectors,
                        backbone.provenance,
                        image_key=keys[positions].tolist(),
                        path=sources[positions].tolist(),
                    )
                )
                held.clear()

        batches = encoded(images, backbone, plan) if images.height else iter(())
        for positions, vectors, failures in batches:
            held.append((positions, vectors))
            if sum(len(p) for p, _ in held) >= plan.shard_size:
                flush()
            failed += failures
            progress.embedded += len(positions)
            progress.failed += len(failures)
            on_batch(progress)
        flush()
    at = np.array([position for position, _, _ in failed], np.int64)
    rows = pl.DataFrame(
        {
            "image_key": keys[at],
            "path": sources[at],
            "reason": [reason for _, reason, _ in failed],
            "detail": [detail for _, _, detail in failed],
        },
        schema=FILE_FAILURES,
    )
    return progress, rows


def _failure_rows(todo: pl.DataFrame, failures: list[tuple]) -> pl.DataFrame:
    schema = {"image_key": pl.String, "reason": pl.String, "detail": pl.String}
    frame = pl.DataFrame(failures, schema=schema, orient="row")
    return (
        frame.join(todo.select("image_key", "path"), on="image_key", how="left")
        .with_columns(failed_at=pl.lit(datetime.now(UTC)))
        .select(list(FAILURES))
        .cast(FAILURES)
    )
