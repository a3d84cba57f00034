"""`scoretag demo build`: the whole demo dataset, seeded and offline.

Raw dumps for four sites go to the profile's inbox in each site's real formats, images to its
image root, and the ground truth (what a correct pipeline should read back) to `demo/`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from assets.evaluation.paths import sets_dir
from orchestration.atomic import write_bytes, write_parquet
from orchestration.settings import DemoSettings
from orchestration.storage import Layout
from scoretag.demo.evaluation import write_evaluation_sets
from scoretag.demo.images import build_images
from scoretag.demo.posts import generate_posts
from scoretag.demo.writers import danbooru, derpibooru, e621, gelbooru
from scoretag.demo.writers.common import Written

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class DemoBuild:
    manifest: dict
    posts: pl.DataFrame
    images: pl.DataFrame
    seconds: float


def _writers(seed: int) -> dict[str, Callable[[pl.DataFrame, Path], list[Written]]]:
    def rng(n: int) -> np.random.Generator:
        return np.random.default_rng([seed, 2, n])

    return {
        "danbooru_api": danbooru.write_api,
        "danbooru_dump": lambda p, d: [danbooru.write_dump(p, d, rng(1))],
        "e621_api": e621.write_api,
        "e621_csv": e621.write_export,
        "derpibooru_api": lambda p, d: derpibooru.write_search(p, d, rng(2)),
        "gelbooru_json": gelbooru.write_json_pages,
        "gelbooru_xml": lambda p, d: [gelbooru.write_xml(p, d)],
    }


def write_sources(posts: pl.DataFrame, inbox: Path, seed: int) -> list[Written]:
    written: list[Written] = []
    for kind, write in _writers(seed).items():
        subset = posts.filter(pl.col("source_kind") == kind)
        site = subset["site"][0]
        written += write(subset, inbox / site)
    return written


def _file_entry(path: Path, home: Path, **facts) -> dict:
    data = path.read_bytes()
    return {
        "path": str(path.relative_to(home)),
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        **facts,
    }


def _skipped_table(written: list[Written], home: Path) -> pl.DataFrame:
    rows = [
        {"site": w.site, "file": str(w.path.relative_to(home)), **s}
        for w in written
        for s in w.skipped
    ]
    schema = {"site": pl.String, "file": pl.String, "record": pl.Int64, "reason": pl.String}
    return pl.DataFrame(rows, schema=schema)


def _remove_stale(layout: Layout, keep: set[str]) -> None:
    """Delete files an earlier build (another seed or size) wrote and this one did not."""
    previous = layout.demo / MANIFEST
    if not previous.is_file():
        return
    for entry in json.loads(previous.read_text())["files"]:
        if entry["path"] not in keep:
            (layout.home / entry["path"]).unlink(missing_ok=True)


def build_demo(layout: Layout, settings: DemoSettings, workers: int | None = None) -> DemoBuild:
    """Build (or rebuild, byte for byte) the demo dataset under a profile's storage root."""
    started = time.perf_counter()
    layout.ensure()
    images = build_images(
        layout.images, seed=settings.seed, n_images=settings.images, workers=workers
    )
    posts = generate_posts(images, settings.posts, settings.seed)
    written = write_sources(posts, layout.inbox, settings.seed)
    truth = {"posts": posts, "images": images, "skipped": _skipped_table(written, layout.home)}
    for name, frame in truth.items():
        write_parquet(frame, layout.demo / f"{name}.parquet")
    files = [
        _file_entry(
            w.path,
            layout.home,
            site=w.site,
            kind=w.kind,
            format=w.fmt,
            records=w.records,
            skipped=len(w.skipped),
        )
        for w in written
    ]
    files += [
        _file_entry(
            layout.images / name,
            layout.home,
            site="",
            kind="image",
            format=ext,
            records=1,
            skipped=0,
        )
        for name, ext in images.select("file_name", "file_ext").iter_rows()
    ]
    manifest = {
        "seed": settings.seed,
        "posts": posts.height,
        "images": images.height,
        "files": sorted(files, key=lambda f: f["path"]),
    }
    # Two sets of "generated" images for `scoretag evaluate` (outside the manifest: they
    # are not the pipeline's input).
    write_evaluation_sets(layout.images, images, sets_dir(layout), settings.seed)
    _remove_stale(layout, {f["path"] for f in files})
    write_bytes(layout.demo / MANIFEST, json.dumps(manifest, indent=1).encode())
    return DemoBuild(manifest, posts, images, time.perf_counter() - started)
