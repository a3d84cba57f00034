"""An export of the catalog, from the active head to shards on disk: calibrate the head if it
has no cut-points yet, select the posts, find their images, write the shards and manifest.
The asset and `scoretag export` both run this.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl

from assets.captions import simpletuner
from assets.captions.buckets import Calibration
from assets.captions.calibration import (
    Policy,
    active_head,
    compute,
    load,
    policy_warning,
    prepare,
    store,
)
from assets.captions.captions import CaptionRules, build_captions, score_tags
from assets.captions.formats import HF_SCHEMA, ROW_COLUMNS
from assets.captions.selection import Filter, select_posts, with_images
from assets.captions.shards import Outcome, Target, write_shards
from assets.captions.sizes import SIZED, read_sizes
from assets.catalog import lock


class CalibrationNeeded(RuntimeError):
    """The active head has no cut-points yet, and the catalog was opened read-only."""


@dataclass(frozen=True)
class Images:
    """Where the images are: the image root, the image index (read when an export needs
    it), and how to get the sha512 of posts without an md5 (Philomena's), read only when
    needed."""

    root: Path
    index: Callable[[], pl.DataFrame]
    sha512: Callable[[], pl.DataFrame] | None = None


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


def connect(catalog: Path, writable: bool, timeout_s: float = 0.0) -> duckdb.DuckDBPyConnection:
    """The catalog, with the stage's macros, waiting up to `timeout_s` while another process
    holds it; errors say what to do."""
    con = lock.connect_existing(catalog, read_only=not writable, timeout_s=timeout_s)
    prepare(con)
    return con


def export_catalog(
    catalog: Path, request: Request, images: Images, writable: bool, now: datetime
) -> Result:
    """Run one export. Read-only, a head without cut-points raises CalibrationNeeded."""
    with connect(catalog, writable, request.lock_timeout_s) as con:
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
        posts = select_posts(con, head, request.where)
    sha512 = images.sha512() if images.sha512 and posts["md5"].null_count() else None
    located = with_images(posts, request.target.fmt, images.root, images.index(), sha512)
    if request.target.fmt in SIZED:
        located = read_sizes(located, request.target.workers)
    result = Result(
        head,
        calibration=calibration,
        calibrated_now=calibrated_now,
        selected=posts.height,
        buckets=_per_bucket(posts),
        dropped=located.dropped,
        warnings=[warning] if warning else [],
    )
    result.message = _describe(result, request)
    result.examples = examples(located.rows, request.rules)
    header = _header(result, request)
    if request.target.fmt in simpletuner.FORMATS:
        header["simpletuner"] = simpletuner.manifest_entry(images.root)
    result.outcome = write_shards(located.rows, request.rules, request.target, header)
    if request.target.fmt in simpletuner.FORMATS:
        simpletuner.write_config(request.target.out, result.outcome.manifest, images.root)
    return result


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
    per_bucket = {
        str(b): len(score_tags(b, rules.style, rules.min_bucket)) + 1
        for b in range(rules.min_bucket, 10)
    }
    return {"by_bucket": per_bucket, "plus_one_on_sites": sorted(rules.source_tags)}


def _header(result: Result, request: Request) -> dict:
    header = {
        "scoretag_export": 1,
        "head_version": result.head,
        "calibration": result.calibration.describe(),
        "caption": {**request.rules.describe(), "keep_tokens": _keep_tokens(request.rules)},
        "filter": request.where.describe(),
        "selected": result.selected,
        "dropped": result.dropped,
        "buckets": {str(b): n for b, n in result.buckets.items()},
        "command": request.command,
        **request.notes,
    }
    if request.target.fmt in ("parquet", "jsonl"):
        header["columns"] = list(ROW_COLUMNS)
    if request.target.fmt == "hf":
        header["columns"] = list(HF_SCHEMA.names)
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
