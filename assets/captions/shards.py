"""Write the selected posts as caption shards of K posts in one format, with a manifest.

Shards are built in parallel (captions and encoding for shard i depend only on its rows), each
first to a hidden temporary file; a shard whose content is already there under its name is
not written again. Once all are staged they are renamed into place, the manifest is replaced,
and the shards it no longer lists are removed (see manifest.py): killed at any point before
the manifest is replaced, an export leaves the previous one whole, and a temporary file is
never named like a shard.

The `kohya` format is the exception: its caption files must sit at fixed names (a trainer
finds them by the image's name), so each is replaced on its own (atomically, and only when
its text changed); the shard files are indexes of them. A caption file or image the export
did not write (not listed by the previous export, nor by the journal of an export killed
before its manifest) is never replaced: the export stops first, naming them.

The kohya formats group their rows by caption group (kohya_group) before cutting shards, and
write `dataset_config.toml` (and, for `kohya`, OneTrainer's `concepts.json`) after the
manifest; see trainers.py.

An incremental export (incremental.py) gives the shards as pieces: the ones to build, with
their rows, and the ones the previous export wrote that stay as they are (their manifest
entries). Only the first are captioned, encoded and staged; the others are neither read nor
touched, and the same guarantees hold: the manifest is replaced last, and only shards it no
longer lists are removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from glob import escape as glob_escape
from pathlib import Path

import polars as pl

from assets.captions import manifest as manifests
from assets.captions.captions import CaptionRules, build_captions, fixed_prefix, prefix_varies
from assets.captions.formats import (
    KOHYA_FORMATS,
    KOHYA_IMAGE_EXTS,
    SUFFIX,
    check_format,
    jsonl_bytes,
    kohya_caption,
    kohya_group,
    kohya_json_bytes,
    parquet_bytes,
    rows_of,
    sidecar_index,
    sidecar_paths,
    sidecars,
    write_hf,
    write_webdataset,
)
from assets.captions.trainers import (
    CONCEPTS,
    DATASET_CONFIG,
    no_concepts_reason,
    write_trainer_configs,
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
    sidecar_layout: str = "mirror"  # kohya: a folder per caption group under `out`
    image_root: Path | None = None  # kohya: the images' root
    workers: int = 0  # 0: one per core
    link: str = "symlink"  # kohya: how images go beside their captions (LINKS)

    def __post_init__(self) -> None:
        check_format(self.fmt)
        if self.shard_size < 1:
            raise ValueError(f"shards hold at least one post, not {self.shard_size}")
        if self.sidecar_layout not in ("mirror", "beside"):
            raise ValueError(f"sidecar layout is mirror or beside, not {self.sidecar_layout!r}")
        if self.fmt == "kohya" and self.sidecar_layout == "beside":
            raise ValueError(
                "sidecar_layout = beside is not a dataset sd-scripts reads right (it reads each "
                "folder non-recursively, with one keep_tokens per folder): the kohya export "
                "writes a folder per score bucket under its own folder; use mirror"
            )
        if self.link not in LINKS:
            raise ValueError(f"images are linked by {', '.join(LINKS)}, not {self.link!r}")
        if self.fmt == "kohya" and self.image_root is None:
            raise ValueError("the kohya format needs the image root")
        if self.caption_extension.lstrip(".").lower() in IMAGE_EXTS:
            raise ValueError(f"caption files cannot end in {self.caption_extension}: images do")

    @property
    def sidecar_root(self) -> Path:
        return self.out


LINKS = ("symlink", "hardlink", "copy")
PENDING = ".kohya-pending.json"  # the files an unfinished kohya export may have written


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
    unchanged: list[str] = field(default_factory=list)  # not written: already there
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # of `unchanged`, those not even rebuilt


@dataclass
class Piece:
    """One shard of an export laid out in advance (incremental.py): its index, and either its
    rows to build or None, for a shard of the previous export kept as it is; `entry` is, for
    a shard built, what its manifest entry adds to name, rows, sha256 and bytes, and for a
    shard kept, its whole manifest entry."""

    index: int
    rows: pl.DataFrame | None
    entry: dict = field(default_factory=dict)


def write_shards(
    rows: pl.DataFrame | None,
    rules: CaptionRules,
    target: Target,
    header: dict,
    pieces: list[Piece] | None = None,
) -> Outcome:
    """Write `rows` (selected, located, in export order) as shards of `target.shard_size`,
    or the shards `pieces` lays out; `header` goes into the manifest as it is, before the
    shards."""
    out = target.out
    out.mkdir(parents=True, exist_ok=True)
    remove_orphans(out)
    previous = manifests.read(out)
    if previous is not None and previous.get("format", target.fmt) != target.fmt:
        raise ValueError(
            f"{out} holds a {previous['format']} export: give {target.fmt} its own folder"
        )
    known = {s["name"]: s["sha256"] for s in (previous or {}).get("shards", [])}
    if pieces is not None:
        if target.fmt in KOHYA_FORMATS:
            raise ValueError("the kohya formats cut their own shards (by caption group)")
        return _write_pieces(pieces, rules, target, header, previous, known)
    if target.fmt in KOHYA_FORMATS:
        rows = _grouped(rows, rules)
        chunks = [
            group.slice(i, target.shard_size)
            for group in rows.partition_by("folder", maintain_order=True)
            for i in range(0, group.height, target.shard_size)
        ]
    else:
        chunks = [
            rows.slice(i, target.shard_size) for i in range(0, rows.height, target.shard_size)
        ]
    if target.fmt == "kohya":
        _claim(rows, target, previous)

    def stage(job: tuple[int, pl.DataFrame]) -> _Staged:
        captioned = build_captions(job[1], rules)
        if target.fmt in KOHYA_FORMATS:
            separator = rules.keep_tokens_separator
            captioned = captioned.with_columns(caption=kohya_caption(captioned, separator))
        return stage_shard(job[0], captioned, target, known)

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
        manifest["link"] = target.link
    if target.fmt in KOHYA_FORMATS:
        manifest["kohya"] = _subsets(chunks, staged, rules)
        manifest["sd_scripts"] = DATASET_CONFIG
    if target.fmt == "kohya":
        why_not = no_concepts_reason(target.caption_extension, rules)
        manifest["onetrainer"] = CONCEPTS if why_not is None else f"not written: {why_not}"
    outcome = _commit(out, staged, manifest, previous, target)
    if target.fmt in KOHYA_FORMATS:
        write_trainer_configs(out, manifest, target.caption_extension, rules)
        (out / PENDING).unlink(missing_ok=True)
    return outcome


def _write_pieces(
    pieces: list[Piece],
    rules: CaptionRules,
    target: Target,
    header: dict,
    previous: dict | None,
    known: dict,
) -> Outcome:
    """Build the pieces that have rows, keep the others, then commit as write_shards does."""
    built = [p for p in pieces if p.rows is not None]

    def stage(piece: Piece) -> _Staged:
        return stage_shard(piece.index, build_captions(piece.rows, rules), target, known)

    with ThreadPoolExecutor(target.workers or os.cpu_count() or 1) as pool:
        done = dict(zip((id(p) for p in built), pool.map(stage, built), strict=True))
    staged, entries, kept = [], [], []
    for piece in pieces:
        if piece.rows is None:
            entry = piece.entry
            staged.append(
                _Staged(
                    piece.index, entry["name"], entry["sha256"], entry["rows"], entry["bytes"], None
                )
            )
            entries.append(entry)
            kept.append(entry["name"])
            continue
        shard = done[id(piece)]
        staged.append(shard)
        entries.append(
            {
                "name": shard.name,
                "rows": shard.rows,
                "sha256": shard.sha256,
                "bytes": shard.size,
                **piece.entry,
            }
        )
    manifest = {
        **header,
        "format": target.fmt,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": sum(s.rows for s in staged),
        "shards": entries,
    }
    outcome = _commit(target.out, staged, manifest, previous, target)
    outcome.kept = kept
    return outcome


def _grouped(rows: pl.DataFrame, rules: CaptionRules) -> pl.DataFrame:
    """`rows` with `folder` (the caption group: one keep_tokens each), best bucket first, in
    export order within a group."""
    keep = None
    if prefix_varies(rules):
        keep = pl.Series(fixed_prefix(rows, rules)["keep_tokens"])
        rows = rows.with_columns(_keep=keep)
        keep = pl.col("_keep")
    rows = rows.with_columns(folder=kohya_group(sorted(rules.source_tags), keep))
    rows = rows.drop("_keep", strict=False)
    return rows.sort("bucket", "folder", descending=[True, False], maintain_order=True)


def _subsets(chunks: list[pl.DataFrame], staged: list[_Staged], rules: CaptionRules) -> list:
    """Each caption group: folder, keep_tokens, images, and the shards that hold it."""
    groups: dict[str, dict] = {}
    for chunk, shard in zip(chunks, staged, strict=True):
        first = chunk.head(1)
        keep = int(fixed_prefix(first, rules)["keep_tokens"][0])
        group = groups.setdefault(
            first["folder"][0],
            {"folder": first["folder"][0], "keep_tokens": keep, "images": 0, "shards": []},
        )
        group["images"] += chunk.height
        group["shards"].append(shard.name)
    return list(groups.values())


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
    """Write each caption file (only where its text changed) and place its image beside it;
    the shard's bytes are their index."""
    files = sidecars(captioned, target.out, target.caption_extension)
    for sidecar in files:
        if not sidecar.path.is_file() or sidecar.path.read_bytes() != sidecar.text:
            write_bytes(sidecar.path, sidecar.text)
        _place(sidecar.image_link, sidecar.image, target.link)
    return sidecar_index(files, target.sidecar_root)


def _placed(dest: Path, image: Path, link: str) -> bool:
    """Whether `dest` is already `image`, placed the `link` way."""
    if link == "symlink":
        return dest.is_symlink() and Path(os.readlink(dest)) == image
    if dest.is_symlink() or not dest.is_file():
        return False
    if link == "hardlink":
        return os.path.samefile(dest, image)
    mine, theirs = dest.stat(), image.stat()
    return not os.path.samefile(dest, image) and (mine.st_size, mine.st_mtime_ns) == (
        theirs.st_size,
        theirs.st_mtime_ns,
    )


def _place(dest: Path, image: Path, link: str) -> None:
    """`image` at `dest`: a symbolic link, a hard link or a copy (its time kept), replacing
    what the export put there before."""
    if _placed(dest, image, link):
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(dest)
    tmp.unlink(missing_ok=True)
    try:
        if link == "symlink":
            os.symlink(image, tmp)
        elif link == "hardlink":
            os.link(image, tmp)
        else:
            shutil.copy2(image, tmp)
        os.replace(tmp, dest)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        hint = "; --link copy or symlink works across them" if link == "hardlink" else ""
        raise OSError(f"could not {link} {image} to {dest}: {e.strerror or e}{hint}") from None


def _owned(out: Path, previous: dict | None) -> set[str]:
    """The files this export may replace in `out`: the caption files the previous kohya
    export lists, and what an unfinished export's journal lists (paths as strings)."""
    owned: set[str] = set()
    if previous and previous.get("format") == "kohya":
        root = previous.get("sidecar_root", str(out))
        for shard in previous["shards"]:
            owned |= _listed(out / shard["name"], root)
    journal = out / PENDING
    if journal.is_file():
        owned |= set(json.loads(journal.read_text()))
    return owned


def _claim(rows: pl.DataFrame, target: Target, previous: dict | None) -> None:
    """Refuse to go on when a caption file or image this export would write is there already
    and the export did not write it (an image is the export's where the caption file of the
    same name is); else journal every path it will write (so an export killed halfway may
    replace them on its next run)."""
    captions, images = sidecar_paths(rows, target.out, target.caption_extension)
    present: set[str] = set()
    for folder in {p.rsplit("/", 1)[0] for p in captions}:
        if os.path.isdir(folder):
            present |= {entry.path for entry in os.scandir(folder)}
    owned = _owned(target.out, previous)
    stems = {p.removesuffix(target.caption_extension) for p in owned}
    stems |= {p.rsplit(".", 1)[0] for p in owned}
    foreign = [p for p in captions if p in present and p not in owned]
    foreign += [
        p for p in images if p in present and p not in owned and p.rsplit(".", 1)[0] not in stems
    ]
    if foreign:
        shown = ", ".join(foreign[:3])
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise ValueError(
            f"{len(foreign)} files where the export writes were not written by it: {shown}"
            f"{more}. It replaces nothing it did not write: move them away or export to "
            "another folder (nothing was written)"
        )
    write_bytes(target.out / PENDING, json.dumps(sorted([*captions, *images])).encode())


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
    for folder in sorted({p.parent for p in stale_sidecars}, reverse=True):
        if folder != out and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()  # a caption group (or a mirror tree's folder) left empty
    return outcome


def _listed(index: Path, root: str | Path) -> set[str]:
    """The caption files an index lists, as absolute paths (strings)."""
    lines = index.read_text().splitlines() if index.is_file() else []
    return {f"{root}/{line.split('  ', 1)[1]}" for line in lines if line}


def _stale_sidecars(out: Path, previous: dict | None, manifest: dict, target: Target) -> list[Path]:
    """Caption files (and image links) the previous kohya export wrote and this one does
    not: read from the old indexes before they go."""
    if target.fmt != "kohya" or not previous or previous.get("format") != "kohya":
        return []
    old_root = previous.get("sidecar_root", str(target.sidecar_root))
    old = set().union(*(_listed(out / s["name"], old_root) for s in previous["shards"]))
    new = set().union(*(_listed(out / s["name"], target.sidecar_root) for s in manifest["shards"]))
    gone = [Path(p) for p in sorted(old - new)]
    if previous.get("sidecar_root") == str(out):
        gone += [p for s in gone for p in _images_beside(s, target.caption_extension)]
    return gone


def _images_beside(sidecar: Path, extension: str) -> list[Path]:
    """The image beside a caption file under the export folder (a link or a copy the export
    made), whatever the image's extension. Never called on an image root."""
    stem = sidecar.name.removesuffix(extension)
    return [
        p
        for p in sidecar.parent.glob(f"{glob_escape(stem)}.*")
        if p.is_symlink() or p.suffix.lstrip(".").lower() in (*KOHYA_IMAGE_EXTS, *IMAGE_EXTS)
    ]
