"""`scoretag bench images`: the image index's first scan against rescans after 1% new
files, over N empty stand-in files (names are all a scan reads of a loose md5 file) in a
sharded md5 layout (`<md5[0:2]>/<md5>.jpg`) plus tar shards of md5-named members.

Three rescans, each after 1% new files: half in a new folder and half in a new tar shard (as
a dated copy and img2dataset write them); a day's downloads where `scoretag images fetch`
stores them (the day's folder under `fetched/`); and new files spread over the existing md5
folders (a curator copying into their own md5 tree), which lists every folder again. Then
an embeddings partition's scope and a pool-style locate run on the index, counting the
scans they make (none). The names are made on the fly: a list of a million names held
during the scans would slow them (the collector walks it), and a user's scan holds none."""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import tarfile
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import polars as pl

from assets.embeddings.scope import scope
from assets.images.download import open_store
from assets.images.fetch import Job
from assets.images.find import SCANS, load_index, scan
from assets.images.locate import locate
from assets.images.paths import fetched_dir
from orchestration.settings import load_settings
from orchestration.storage import Layout

MEMBERS_PER_TAR = 1000


def _name(i: int) -> str:
    return hashlib.md5(str(i).encode()).hexdigest()


def _names(start: int, n: int) -> Iterator[str]:
    return (_name(i) for i in range(start, start + n))


def _touch(path: Path) -> None:
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))


def _loose(root: Path, names: Iterable[str]) -> None:
    for name in names:
        folder = root / name[:2]
        folder.mkdir(parents=True, exist_ok=True)
        _touch(folder / f"{name}.jpg")


def _tar(path: Path, names: Iterable[str]) -> None:
    with tarfile.open(path, "w") as tar:
        for name in names:
            tar.addfile(tarfile.TarInfo(f"{name}.jpg"))


def _settle(root: Path) -> None:
    """Date folders written in the last seconds back a minute, as a folder last written
    long before a scan is (a folder modified just before a scan is listed again anyway)."""
    now = time.time()
    folders = [root, *(p for p in root.iterdir() if p.is_dir())]
    folders += [Path(d) for d, _, _ in os.walk(root / "fetched")]
    for folder in folders:
        if folder.stat().st_mtime > now - 10:
            os.utime(folder, (now - 60, now - 60))


def _timed_scan(layout: Layout, settings) -> tuple[float, object]:
    started = time.perf_counter()
    report = scan(layout, settings)
    return time.perf_counter() - started, report


def _fetched(layout: Layout, names: Iterable[str]) -> None:
    """Empty stand-ins where `scoretag images fetch` stores a day's downloads."""
    with open_store(fetched_dir(layout)) as store:
        for name in names:
            target = Job(f"danbooru:{name}", "danbooru", "", name, None, "jpg").target(store)
            target.parent.mkdir(parents=True, exist_ok=True)
            _touch(target)


def _rescan(layout: Layout, settings, first_s: float, name: str) -> dict:
    _settle(layout.images)
    seconds, report = _timed_scan(layout, settings)
    return {
        f"{name}_seconds": round(seconds, 3),
        name: report.as_dict(),
        f"{name}_over_first": round(seconds / first_s, 4),
    }


def images_bench(files: int = 1_000_000, tars: int = 10, workdir: Path | None = None) -> dict:
    work = Path(tempfile.mkdtemp(prefix="scoretag-bench-images-", dir=workdir))
    try:
        root = work / "images"
        (root / "shards").mkdir(parents=True)
        in_tars = min(tars * MEMBERS_PER_TAR, files // 10)
        loose = files - in_tars
        _loose(root, _names(0, loose))
        per_tar = max(1, in_tars // max(tars, 1))
        for t in range(tars):
            _tar(root / "shards" / f"{t:05d}.tar", _names(loose + t * per_tar, per_tar))
        _settle(root)
        layout = Layout(home=work / "home", image_root_override=str(root))
        settings = load_settings("demo")
        first_s, first = _timed_scan(layout, settings)

        new = max(1, files // 100)
        batch_dir = root / "batch-0001"
        batch_dir.mkdir()
        for name in _names(files, new // 2):
            _touch(batch_dir / f"{name}.jpg")
        _tar(root / "shards" / f"{tars:05d}.tar", _names(files + new // 2, new - new // 2))
        rescan = _rescan(layout, settings, first_s, "rescan")
        _fetched(layout, _names(files + new, new))
        fetched = _rescan(layout, settings, first_s, "rescan_fetched")
        _loose(root, _names(files + 2 * new, new))
        spread = _rescan(layout, settings, first_s, "rescan_spread")

        scans_before = SCANS["count"]
        rng = np.random.default_rng(0)
        picked = np.sort(rng.choice(loose, size=min(loose, 10_000), replace=False))
        posts = pl.DataFrame(
            {
                "site": "danbooru",
                "post_id": picked.astype(np.int64),
                "md5": [_name(int(i)) for i in picked],
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
            **rescan,
            "fetched_where": "a day's downloads: fetched/<day>/<site>/<md5[0:2]>/<md5>.jpg",
            **fetched,
            "spread_where": "spread over the existing md5 folders (each listed again)",
            **spread,
            "embeddings_partition_seconds": round(partition_s, 3),
            "embeddings_partition_requested": partition.requested,
            "pool_located": pool_located,
            "scans_by_partition_and_pool": SCANS["count"] - scans_before,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
