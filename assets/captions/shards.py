"""Write the selected posts as caption shards of K posts in one format, with a manifest.

Shards are built in parallel (captions and encoding for shard i depend only on its rows), each
first to a hidden temporary file; a shard whose content is already there under its name is
not written again. Once all are staged they are renamed into place, the manifest is replaced,
and the shards it no longer lists are removed (see manifest.py): killed at any point before
the manifest is replaced, an export leaves the previous one whole, and a temporary file is
never named like a shard.

The `kohya` format is the exception: its caption files must sit at fixed names (a trainer
finds them by the image's name), so each is replaced on its own (atomically, and only when
its text changed); the shard files are indexes of them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from assets.captions import manifest as manifests
from assets.captions.captions import CaptionRules, build_captions
from assets.captions.formats import (
    SUFFIX,
    check_format,
    jsonl_bytes,
    kohya_json_bytes,
    parquet_bytes,
    rows_of,
    sidecar_index,
    sidecars,
    write_hf,
    write_webdataset,
)
from assets.images.names import IMAGE_EXTS
from orchestration.atomic import remove_orphans, temporary_name, write_bytes


@dataclass(frozen=True)
class Target:
    """Where and how an export is written."""

    fmt: str
    out: Path
    shard_size: int = 10_000
    caption_extension: str = ".txt"
    sidecar_layout: str = "mirror"  # kohya: "mirror" (a tree under `out`) or "beside"
    image_root: Path | None = None  # kohya: the images' root
    workers: int = 0  # 0: one per core

    def __post_init__(self) -> None:
        check_format(self.fmt)
        if self.shard_size < 1:
            raise ValueError(f"shards hold at least one post, not {self.shard_size}")
        if self.sidecar_layout not in ("mirror", "beside"):
            raise ValueError(f"sidecar layout is mirror or beside, not {self.sidecar_layout!r}")
        if self.fmt == "kohya" and self.image_root is None:
            raise ValueError("the kohya format needs the image root")
        if self.caption_extension.lstrip(".").lower() in IMAGE_EXTS:
            raise ValueError(f"caption files cannot end in {self.caption_extension}: images do")

    @property
    def sidecar_root(self) -> Path:
        return self.out if self.sidecar_layout == "mirror" else self.image_root


@dataclass
class _Staged:
    index: int
    name: str
    sha256: str
    rows: int
    size: int
    tmp: Path | None  # to rename into place; None: already there, unchanged


@dataclass
class Outcome:
    manifest: dict
    written: list[str] = field(default_factory=list)  # shards (re)written this time
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def write_shards(rows: pl.DataFrame, rules: CaptionRules, target: Target, header: dict) -> Outcome:
    """Write `rows` (selected, located, in export order) as shards; `header` goes into the
    manifest as it is, before the shards."""
    out = target.out
    out.mkdir(parents=True, exist_ok=True)
    remove_orphans(out)
    previous = manifests.read(out)
    if previous is not None and previous.get("format", target.fmt) != target.fmt:
        raise ValueError(
            f"{out} holds a {previous['format']} export: give {target.fmt} its own folder"
        )
    known = {s["name"]: s["sha256"] for s in (previous or {}).get("shards", [])}
    chunks = [rows.slice(i, target.shard_size) for i in range(0, rows.height, target.shard_size)]

    def stage(job: tuple[int, pl.DataFrame]) -> _Staged:
        return stage_shard(job[0], build_captions(job[1], rules), target, known)

    with ThreadPoolExecutor(target.workers or os.cpu_count() or 1) as pool:
        staged = list(pool.map(stage, enumerate(chunks)))
    manifest = {
        **header,
        "format": target.fmt,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": sum(s.rows for s in staged),
        "shards": [
            {"name": s.name, "rows": s.rows, "sha256": s.sha256, "bytes": s.size} for s in staged
        ],
    }
    if target.fmt == "kohya":
        manifest["sidecar_root"] = str(target.sidecar_root)
    return _commit(out, staged, manifest, previous, target)


def stage_shard(index: int, captioned: pl.DataFrame, target: Target, known: dict) -> _Staged:
    """Write shard `index` to a temporary file unless it is already there, unchanged."""
    if target.fmt in FILE_WRITERS:
        return _stage_file(index, captioned, target, known)
    encode: dict[str, Callable[[pl.DataFrame], bytes]] = {
        "parquet": lambda c: parquet_bytes(rows_of(c)),
        "jsonl": lambda c: jsonl_bytes(rows_of(c)),
        "kohya_json": lambda c: kohya_json_bytes(rows_of(c)),
        "kohya": lambda c: _write_sidecars(c, target),
    }
    data = encode[target.fmt](captioned)
    sha = hashlib.sha256(data).hexdigest()
    name = manifests.shard_name(index, sha, SUFFIX[target.fmt])
    staged = _Staged(index, name, sha, captioned.height, len(data), None)
    if known.get(name) != sha or not (target.out / name).is_file():
        staged.tmp = temporary_name(target.out / name)
        staged.tmp.write_bytes(data)
    return staged


# Formats that carry the images' bytes: a shard too big to hold in memory, written to disk.
FILE_WRITERS: dict[str, Callable[[pl.DataFrame, Path], None]] = {
    "webdataset": write_webdataset,
    "hf": write_hf,
}


def _stage_file(index: int, captioned: pl.DataFrame, target: Target, known: dict) -> _Staged:
    # It is hashed once on disk.
    suffix = SUFFIX[target.fmt]
    tmp = temporary_name(target.out / f"shard-{index:05d}{suffix}")
    FILE_WRITERS[target.fmt](captioned, tmp)
    sha = manifests.sha256_file(tmp)
    name = manifests.shard_name(index, sha, suffix)
    staged = _Staged(index, name, sha, captioned.height, tmp.stat().st_size, tmp)
    if known.get(name) == sha and (target.out / name).is_file():
        tmp.unlink()
        staged.tmp = None
    return staged


def _write_sidecars(captioned: pl.DataFrame, target: Target) -> bytes:
    """Write each caption file (and, in a mirror tree, the image's link) in place; the
    shard's bytes are their index."""
    mirror = target.out if target.sidecar_layout == "mirror" else None
    files = sidecars(captioned, target.image_root, target.caption_extension, mirror)
    for sidecar in files:
        write_bytes(sidecar.path, sidecar.text)
        if sidecar.image_link is not None:
            _link(sidecar.image_link, sidecar.image)
    return sidecar_index(files, target.sidecar_root)


def _link(link: Path, image: Path) -> None:
    if link.is_symlink() and Path(os.readlink(link)) == image:
        return
    if link.exists() and not link.is_symlink():
        raise ValueError(f"{link} is a file, not an image link: the export will not replace it")
    tmp = temporary_name(link)
    tmp.unlink(missing_ok=True)
    os.symlink(image, tmp)
    os.replace(tmp, link)


def _commit(
    out: Path, staged: list[_Staged], manifest: dict, previous: dict | None, target: Target
) -> Outcome:
    outcome = Outcome(manifest)
    for shard in staged:
        if shard.tmp is None:
            outcome.unchanged.append(shard.name)
        else:
            os.replace(shard.tmp, out / shard.name)
            outcome.written.append(shard.name)
    stale_sidecars = _stale_sidecars(out, previous, manifest, target)
    manifests.write(out, manifest)
    for path in manifests.stale_shards(out, manifest):
        path.unlink()
        outcome.removed.append(path.name)
    for path in stale_sidecars:
        path.unlink(missing_ok=True)
    return outcome


def _listed(index: Path, root: Path) -> set[Path]:
    lines = index.read_text().splitlines() if index.is_file() else []
    return {root / line.split("  ", 1)[1] for line in lines if line}


def _stale_sidecars(out: Path, previous: dict | None, manifest: dict, target: Target) -> list[Path]:
    """Caption files (and image links) the previous kohya export wrote and this one does
    not: read from the old indexes before they go."""
    if target.fmt != "kohya" or not previous or previous.get("format") != "kohya":
        return []
    old_root = Path(previous.get("sidecar_root", target.sidecar_root))
    old = set().union(*(_listed(out / s["name"], old_root) for s in previous["shards"]))
    new = set().union(*(_listed(out / s["name"], target.sidecar_root) for s in manifest["shards"]))
    gone = sorted(old - new)
    if previous.get("sidecar_root") == str(out):
        gone += [_image_link(p, target.caption_extension) for p in gone]
    return [p for p in gone if p is not None]


def _image_link(sidecar: Path, extension: str) -> Path | None:
    """The image link beside a mirror tree's caption file, whatever the image's extension."""
    stem = sidecar.name.removesuffix(extension)
    links = [p for p in sidecar.parent.glob(f"{stem}.*") if p.is_symlink()]
    return links[0] if links else None
