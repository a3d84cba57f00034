"""What could not be downloaded, and why: one parquet file per fetch run, never overwritten.

A post whose file the site answered for good (404, 410, a body that is not the post's file)
is not asked for again unless the user says so (`--retry-failed`); timeouts and other passing
trouble are tried again on the next run.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from assets.images.fetch import Outcome
from assets.images.paths import STAGE
from orchestration.atomic import write_parquet
from orchestration.storage import Layout

QUARANTINE: dict[str, pl.DataType] = {
    "post_key": pl.String,
    "site": pl.String,
    "url": pl.String,
    "reason": pl.String,
    "http_status": pl.Int32,
    "bytes": pl.Int64,
    "attempts": pl.Int32,
    "at": pl.Datetime("us", "UTC"),
}
FINAL_REASONS = ("http 404", "http 410", "md5 mismatch", "sha512 mismatch", "not an image")


def quarantine_dir(layout: Layout) -> Path:
    return layout.stage_dir(STAGE) / "fetch_quarantine"


def quarantine_frame(outcomes: Sequence[Outcome]) -> pl.DataFrame:
    rows = [
        (
            o.job.post_key,
            o.job.site,
            o.job.url,
            o.reason,
            o.http_status,
            o.bytes,
            o.attempts,
            datetime.fromtimestamp(o.at, UTC),
        )
        for o in outcomes
        if o.status == "failed"
    ]
    return pl.DataFrame(rows, schema=QUARANTINE, orient="row")


def write_quarantine(outcomes: Sequence[Outcome], layout: Layout) -> Path | None:
    """This run's failures as a new file of the quarantine table (None when there were none)."""
    frame = quarantine_frame(outcomes)
    if frame.is_empty():
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    return write_parquet(frame, quarantine_dir(layout) / f"{stamp}-{os.getpid()}.parquet")


def read_quarantine(layout: Layout) -> pl.DataFrame:
    files = sorted(quarantine_dir(layout).glob("[!.]*.parquet"))
    if not files:
        return pl.DataFrame(schema=QUARANTINE)
    return pl.concat([pl.read_parquet(f) for f in files]).cast(QUARANTINE)


def given_up(layout: Layout) -> pl.Series:
    """post_keys whose latest failure says that asking again would give the same answer."""
    latest = read_quarantine(layout).sort("at").unique("post_key", keep="last")
    return latest.filter(pl.col("reason").is_in(FINAL_REASONS))["post_key"]


def summary(outcomes: Sequence[Outcome]) -> dict:
    """fetched, skipped and failed counts, failures by reason, bytes and seconds."""
    statuses = Counter(o.status for o in outcomes)
    reasons = Counter(o.reason for o in outcomes if o.status == "failed")
    return {
        "fetched": statuses["fetched"],
        "skipped": statuses["skipped"],
        "failed": statuses["failed"],
        "failed_by_reason": dict(reasons.most_common()),
        "bytes": sum(o.bytes for o in outcomes if o.status == "fetched"),
    }
