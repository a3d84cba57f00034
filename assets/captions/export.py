"""An export of the catalog, from the active head to shards on disk: calibrate the head if it
has no cut-points yet, select the posts, find their images, write the shards and manifest.
The asset and `scoretag export` both run this.

An export over a previous one of the same shape builds only the shards whose posts changed in
the catalog since (incremental.py); `Result.phases` says where its time went.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl

from assets.captions import incremental, simpletuner
from assets.captions import manifest as manifests
from assets.captions.buckets import Calibration
from assets.captions.calibration import (
    CalibrationNeeded,
    Policy,
    active_head,
    compute,
    family_cuts,
    family_scope,
    load,
    policy_warning,
    prepare,
    store,
)
from assets.captions.captions import CaptionRules, bucket_tags, build_captions, prefix_varies
from assets.captions.families import Cuts, with_tags
from assets.captions.formats import HF_SCHEMA, ROW_COLUMNS
from assets.captions.lookup import keys_of
from assets.captions.selection import Filter, Located, select_posts, with_images
from assets.captions.shards import Outcome, Target, write_shards
from assets.captions.sizes import SIZED, read_sizes
from assets.catalog import lock
from orchestration.clock import Clock


@dataclass(frozen=True)
class Images:
    """Where the images are: the image root, the image index (read when an export needs
    it), and how to get the sha512 of posts without an md5 (Philomena's), read only when
    needed. `entries`, where given, reads only the index's entries for some keys (md5,
    sha512, post_key, image_key: lookup.py): what an incremental export reads."""

    root: Path
    index: Callable[[], pl.DataFrame]
    sha512: Callable[[], pl.DataFrame] | None = None
    entries: Callable[[dict[str, list[str]]], pl.DataFrame] | None = None


@dataclass(frozen=True)
class Request:
    """One export: format and folder, caption rules, filter, calibration policy."""

    target: Target
    rules: CaptionRules
    where: Filter
    policy: Policy
    record: Path  # the calibration record's folder
    command: str = ""
    notes: dict = field(default_factory=dict)  # extra manifest entries (quality signal)
    lock_timeout_s: float = 0.0  # how long to wait while another process holds the catalog
    memory_mb: int | None = None  # DuckDB's memory limit ([catalog] memory_mb); None: its own
    full: bool = False  # build every shard, even where an incremental export would do

    def __post_init__(self) -> None:
        if self.rules.min_bucket != self.where.min_bucket:
            raise ValueError("the caption rules and the filter disagree on the minimum bucket")


@dataclass
class Result:
    head: str | None
    message: str = ""
    calibration: Calibration | None = None
    calibrated_now: bool = False
    selected: int = 0
    buckets: dict[int, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    outcome: Outcome | None = None
    incremental: bool = False  # only the shards whose posts changed were built
    why: str = ""  # why the export was whole, or what the incremental one built
    # Shards rebuilt (their index was in the previous export), kept (neither read nor built),
    # added (a new index), removed (an index of the previous export gone).
    shards: dict[str, int] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)  # seconds per step
    style_name: str = ""  # the vocabulary the captions speak

    @property
    def rows(self) -> int:
        return self.outcome.manifest["rows"] if self.outcome else 0


def calibrate(
    con: duckdb.DuckDBPyConnection, head: str, policy: Policy, record: Path, now: datetime
) -> Calibration:
    """Work out the head's cut-points under `policy` and store them (replacing any)."""
    calibration = compute(con, head, policy, now)
    store(con, calibration, record / f"{head}.json")
    return calibration


def connect(
    catalog: Path, writable: bool, timeout_s: float = 0.0, memory_mb: int | None = None
) -> duckdb.DuckDBPyConnection:
    """The catalog, with the stage's macros, waiting up to `timeout_s` while another process
    holds it, DuckDB held to `memory_mb` when given; errors say what to do."""
    con = lock.connect_existing(
        catalog, read_only=not writable, config=lock.memory_config(memory_mb), timeout_s=timeout_s
    )
    prepare(con)
    return con


def export_catalog(
    catalog: Path, request: Request, images: Images, writable: bool, now: datetime
) -> Result:
    """Run one export: incremental where the previous export in the folder allows it (see
    incremental.py), else whole. Read-only, a head without cut-points raises
    CalibrationNeeded."""
    clock = Clock()
    target = request.target
    with connect(catalog, writable, request.lock_timeout_s, request.memory_mb) as con:
        head = active_head(con)
        if head is None:
            return Result(None, "no head is active: nothing is scored, so nothing to export")
        calibration = load(con, head, request.record / f"{head}.json")
        calibrated_now = calibration is None
        if calibration is None:
            if not writable:
                raise CalibrationNeeded(head)
            calibration = calibrate(con, head, request.policy, request.record, now)
        warning = policy_warning(calibration, request.policy)
        words = request.rules.words
        scope = family_scope(calibration, request.policy)
        cuts = family_cuts(con, head, words, scope, writable, now)
        header = _header(head, calibration, request, images.root, cuts)
        digests = incremental.shape(header, target, images.root)
        previous = manifests.read(target.out) if target.out.is_dir() else None
        layout = incremental.plan(con, previous, digests, target, head, request.full)
        clock.lap("plan")
        posts = select_posts(con, head, request.where, None if layout.full else layout.ranges())
        posts = with_tags(posts, words.cut_families(), cuts)
        clock.lap("select")
    located = _located(posts, target.fmt, images, not layout.full)
    clock.lap("locate")
    if target.fmt in SIZED:
        known = incremental.known_sizes(layout, previous, target)
        located = read_sizes(located, target.workers, known)
    clock.lap("sizes")
    ranged = not layout.full or incremental.has_ranges(target.fmt, layout.state, posts)
    if ranged:
        pieces, totals = incremental.lay_out(
            layout, posts, located.rows, located.left_out, target.shard_size
        )
    else:
        pieces = None
        totals = {
            "selected": posts.height,
            "dropped": located.dropped,
            "buckets": _per_bucket(posts),
        }
    result = Result(
        head,
        calibration=calibration,
        calibrated_now=calibrated_now,
        selected=totals["selected"],
        buckets={int(b): n for b, n in totals["buckets"].items()},
        dropped=totals["dropped"],
        warnings=[warning] if warning else [],
        incremental=not layout.full,
        why=layout.reason,
        style_name=words.name,
    )
    result.message = _describe(result, request)
    result.examples = examples(located.rows, request.rules)
    header = {
        **header,
        "selected": result.selected,
        "dropped": result.dropped,
        "buckets": {str(b): n for b, n in sorted(result.buckets.items())},
    }
    if ranged:
        header["incremental"] = incremental.record(layout.state, digests)
    result.outcome = write_shards(located.rows, request.rules, target, header, pieces)
    if target.fmt in simpletuner.FORMATS:
        simpletuner.write_config(target.out, result.outcome.manifest, images.root)
    clock.lap("write")
    result.shards = _shard_counts(layout.previous_indexes, result.outcome)
    result.phases = clock.total()
    return result


def _located(posts: pl.DataFrame, fmt: str, images: Images, some: bool) -> Located:
    """Where the images of `posts` are: the image index is read only when there are posts,
    and only their entries where `some` (an incremental export) and the images can say."""
    if posts.height == 0:
        return with_images(posts, fmt, images.root, pl.DataFrame())
    sha512 = images.sha512() if images.sha512 and posts["md5"].null_count() else None
    if some and images.entries is not None:
        entries = images.entries(keys_of(posts, sha512))
    else:
        entries = images.index()
    return with_images(posts, fmt, images.root, entries, sha512)


def _shard_counts(previous: frozenset[int], outcome: Outcome) -> dict[str, int]:
    now = {int(s["name"].split("-")[1]) for s in outcome.manifest["shards"]}
    kept = {int(name.split("-")[1]) for name in outcome.kept}
    built = now - kept
    return {
        "rebuilt": len(built & previous),
        "kept": len(kept),
        "added": len(built - previous),
        "removed": len(previous - now),
        "files_written": len(outcome.written),
    }


def _per_bucket(posts: pl.DataFrame) -> dict[int, int]:
    counts = posts.group_by("bucket").len().sort("bucket")
    return dict(zip(counts["bucket"].to_list(), counts["len"].to_list(), strict=True))


def examples(rows: pl.DataFrame, rules: CaptionRules, n: int = 3) -> list[str]:
    """Captions of `n` posts spread over the buckets, best first."""
    if rows.height == 0:
        return []
    picked = rows.sort("bucket", "site", "post_id", descending=[True, False, False])
    picked = picked.gather_every(max(1, picked.height // n)).head(n)
    return build_captions(picked, rules)["caption"].to_list()


def _describe(result: Result, request: Request) -> str:
    where = request.where.describe()
    if result.selected == 0:
        return (
            f"no post matches the filter (bucket >= {where['min_bucket']}, ratings "
            f"{', '.join(where['ratings'])}, sites {where['sites']}, not deleted) under head "
            f"{result.head}: the export holds no shard"
        )
    dropped = ", ".join(f"{n} {reason}" for reason, n in result.dropped.items())
    return f"{result.selected} posts selected" + (f"; left out: {dropped}" if dropped else "")


def _keep_tokens(rules: CaptionRules) -> dict:
    """How many tags each caption keeps in front, as kohya counts them: per bucket (its
    bucket tags and the rating tag), one more on the sites with a source tag; where the
    fixed tags vary otherwise (prefix_varies), each row's keep_tokens and each kohya subset
    say it."""
    words = rules.words
    if prefix_varies(rules):
        return {"per_row": True, "prefix": list(words.prefix)}
    rating = int("rating" in words.prefix)
    per_bucket = {
        str(b): len(bucket_tags(words.bucket_family, b, rules.min_bucket)) + rating
        for b in range(rules.min_bucket, 10)
    }
    sources = sorted(rules.source_tags) if "source" in words.prefix else []
    return {"by_bucket": per_bucket, "plus_one_on_sites": sources}


def _header(
    head: str,
    calibration: Calibration,
    request: Request,
    image_root: Path,
    cuts: dict[str, Cuts],
) -> dict:
    """What the manifest says of how its shards were made (the counts go in later)."""
    header = {
        "scoretag_export": 1,
        "head_version": head,
        "calibration": calibration.describe(),
        "tag_calibrations": {name: c.record() for name, c in cuts.items()},
        "caption": {**request.rules.describe(), "keep_tokens": _keep_tokens(request.rules)},
        "filter": request.where.describe(),
        "command": request.command,
        **request.notes,
    }
    if request.target.fmt in ("parquet", "jsonl"):
        header["columns"] = list(ROW_COLUMNS)
    if request.target.fmt == "hf":
        header["columns"] = list(HF_SCHEMA.names)
    if request.target.fmt in simpletuner.FORMATS:
        header["simpletuner"] = simpletuner.manifest_entry(image_root)
    return header


def command_line(
    profile: str,
    config: str,
    fmt: str,
    rules: CaptionRules,
    where: Filter,
    out: Path | str,
    size: int,
    link: str | None = None,
) -> str:
    """The `scoretag export` command that makes this export again."""
    words = ["scoretag", "--profile", profile]
    if config:
        words += ["--config", config]
    words += [
        "export",
        "--format",
        fmt,
        "--style",
        rules.style,
        "--min-bucket",
        str(where.min_bucket),
    ]
    words += ["--ratings", ",".join(sorted(where.ratings))]
    if where.sites:
        words += ["--sites", ",".join(sorted(where.sites))]
    words += ["--shard-size", str(size)]
    if link:
        words += ["--link", link]
    words += ["--out", str(out)]
    return shlex.join(words)
