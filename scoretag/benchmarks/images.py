"""`scoretag bench images`: the image index's first scan against a rescan after 1% new
files, over N empty stand-in files (names are all a scan reads of a loose md5 file) in a
sharded md5 layout (`<md5[0:2]>/<md5>.jpg`) plus tar shards of md5-named members.

Two rescans: new files arriving in new folders and a new tar shard (as img2dataset and a
dated download folder write them), and new files spread over the existing md5 folders (as
`scoretag images fetch` stores them), which makes every folder they land in listed again.
Then an embeddings partition's scope and a pool-style locate run on the index, counting the
scans they make (none)."""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from assets.embeddings.scope import scope
from assets.images.find import SCANS, load_index, scan
from assets.images.locate import locate
from orchestration.settings import load_settings
from orchestration.storage import Layout

MEMBERS_PER_TAR = 1000


def _names(start: int, n: int) -> list[str]:
    return [hashlib.md5(str(i).encode()).hexdigest() for i in range(start, start + n)]


def _loose(root: Path, names: list[str]) -> None:
    for name in names:
        folder = root / name[:2]
        folder.mkdir(exist_ok=True)
        os.close(os.open(folder / f"{name}.jpg", os.O_CREAT | os.O_WRONLY, 0o644))


def _tar(path: Path, names: list[str]) -> None:
    with tarfile.open(path, "w") as tar:
        for name in names:
            tar.addfile(tarfile.TarInfo(f"{name}.jpg"))


def _settle(root: Path) -> None:
    """Date folders written in the last seconds back a minute, as a folder last written
    long before a scan is (a folder modified just before a scan is listed again anyway)."""
    now = time.time()
    for folder in [root, *(p for p in root.iterdir() if p.is_dir())]:
        if folder.stat().st_mtime > now - 10:
            os.utime(folder, (now - 60, now - 60))


def _timed_scan(layout: Layout, settings) -> tuple[float, object]:
    started = time.perf_counter()
    report = scan(layout, settings)
    return time.perf_counter() - started, report


def images_bench(files: int = 1_000_000, tars: int = 10, workdir: Path | None = None) -> dict:
    work = Path(tempfile.mkdtemp(prefix="scoretag-bench-images-", dir=workdir))
    try:
        root = work / "images"
        (root / "shards").mkdir(parents=True)
        in_tars = min(tars * MEMBERS_PER_TAR, files // 10)
        loose = files - in_tars
        names = _names(0, files)
        _loose(root, names[:loose])
        per_tar = max(1, in_tars // max(tars, 1))
        for t in range(tars):
            _tar(root / "shards" / f"{t:05d}.tar", names[loose + t * per_tar :][:per_tar])
        _settle(root)
        layout = Layout(home=work / "home", image_root_override=str(root))
        settings = load_settings("demo")
        first_s, first = _timed_scan(layout, settings)

        new = max(1, files // 100)
        batch = _names(files, new)
        batch_dir = root / "batch-0001"
        batch_dir.mkdir()
        for name in batch[: new // 2]:
            os.close(os.open(batch_dir / f"{name}.jpg", os.O_CREAT | os.O_WRONLY, 0o644))
        _tar(root / "shards" / f"{tars:05d}.tar", batch[new // 2 :])
        _settle(root)
        rescan_s, rescan = _timed_scan(layout, settings)

        spread = _names(files + new, new)
        _loose(root, spread)
        _settle(root)
        spread_s, spread_report = _timed_scan(layout, settings)

        scans_before = SCANS["count"]
        rng = np.random.default_rng(0)
        picked = rng.choice(files, size=min(files, 10_000), replace=False)
        posts = pl.DataFrame(
            {
                "site": "danbooru",
                "post_id": picked.astype(np.int64),
                "md5": [names[i] for i in picked],
                "sha512": pl.Series([None] * len(picked), dtype=pl.String),
                "file_ext": "jpg",
            }
        )
        started = time.perf_counter()
        partition = scope(posts, load_index(layout, settings), ("mp4",))
        partition_s = time.perf_counter() - started
        pool_located = locate(posts.drop("file_ext"), load_index(layout, settings)).height
        entries = load_index(layout, settings).height
        return {
            "bench": "images",
            "files": files,
            "files_kind": "empty (zero-byte stand-ins: a scan reads names, not bytes)",
            "layout": "loose <md5[0:2]>/<md5>.jpg, plus tar shards of md5-named members",
            "loose_files": loose,
            "tar_members": in_tars,
            "tars": tars,
            "indexed": entries,
            "first_scan_seconds": round(first_s, 3),
            "first_scan": first.as_dict(),
            "new_files": new,
            "new_files_where": "half in a new folder, half in a new tar shard",
            "rescan_seconds": round(rescan_s, 3),
            "rescan": rescan.as_dict(),
            "rescan_over_first": round(rescan_s / first_s, 4),
            "spread_new_files": new,
            "spread_where": "spread over the existing md5 folders (each listed again)",
            "rescan_spread_seconds": round(spread_s, 3),
            "rescan_spread": spread_report.as_dict(),
            "rescan_spread_over_first": round(spread_s / first_s, 4),
            "embeddings_partition_seconds": round(partition_s, 3),
            "embeddings_partition_requested": partition.requested,
            "pool_located": pool_located,
            "scans_by_partition_and_pool": SCANS["count"] - scans_before,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
