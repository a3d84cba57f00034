"""Images decoded in worker processes and batched as uint8 pixels, failures kept aside.

A torch DataLoader runs `ImageFiles` in `workers` processes; each returns its batch as one
uint8 tensor (which the loader moves through shared memory) plus the failures of that batch.
Paths are kept in an Arrow array, not a Python list: forked workers read them without
touching (and so copying) millions of Python objects' reference counts.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from assets.embeddings.preprocess import Geometry
from assets.images.decode import Unusable, decode, read_bytes


@dataclass
class Batch:
    """Positions (in the dataset) of the decoded images and their pixels, and the failures
    (position, reason, detail) of the rest."""

    positions: np.ndarray
    pixels: torch.Tensor  # (n, height, width, 3) uint8
    failures: list[tuple[int, str, str]]

    def pin_memory(self) -> Batch:
        self.pixels = self.pixels.pin_memory()
        return self


class ImageFiles(Dataset):
    """The images at `locations` (path, offset, length), ready for the backbone."""

    def __init__(self, locations: pl.DataFrame, geometry: Geometry, max_pixels: int):
        self.paths = locations["path"].to_arrow()
        self.offsets = locations["offset"].to_numpy()
        self.lengths = locations["length"].to_numpy()
        self.geometry = geometry
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.offsets)

    def __getitem__(self, position: int) -> tuple[int, np.ndarray | None, str, str]:
        path = Path(self.paths[position].as_py())
        try:
            data = read_bytes(path, int(self.offsets[position]), int(self.lengths[position]))
            picture = decode(data, self.max_pixels, self.geometry.draft_size)
            return position, self.geometry.apply(picture), "", ""
        except Unusable as e:
            return position, None, e.reason, e.detail
        except Exception as e:  # noqa: BLE001 - one odd file must not stop a million-image run
            return position, None, "corrupt", f"{type(e).__name__}: {e}"


def collate(items: list[tuple[int, np.ndarray | None, str, str]]) -> Batch:
    decoded = [(i, pixels) for i, pixels, _, _ in items if pixels is not None]
    failures = [(i, reason, detail) for i, pixels, reason, detail in items if pixels is None]
    positions = np.array([i for i, _ in decoded], dtype=np.int64)
    if decoded:
        pixels = torch.from_numpy(np.stack([p for _, p in decoded]))
    else:
        pixels = torch.empty((0, 0, 0, 3), dtype=torch.uint8)
    return Batch(positions, pixels, failures)


def _quiet_worker(worker_id: int) -> None:
    # Pictures over max_pixels are refused by decode(); PIL's own warning would be noise.
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
    torch.set_num_threads(1)


def resolve_workers(workers: int | str) -> int:
    if workers == "auto":
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return min(cores or 1, 16)
    return int(workers)


def batches(
    dataset: ImageFiles, batch_size: int, workers: int, prefetch: int, pin: bool
) -> DataLoader:
    """Batches in dataset order, decoded `prefetch` batches ahead per worker."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=pin,
        prefetch_factor=prefetch if workers else None,
        worker_init_fn=_quiet_worker if workers else None,
        persistent_workers=False,
    )
