"""Fetching what is missing, as `scoretag images fetch` and the image_files step do it: the
current posts, less those with an image and those given up on, through the downloader, with
every failure written to the quarantine table, even when the run is interrupted."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import polars as pl

from assets.images import quarantine, urls
from assets.images.fetch import Outcome, Policy, fetch_all
from assets.images.find import located
from assets.images.paths import STAGE, fetched_dir
from assets.ingest.current import current_posts
from assets.ingest.paths import posts_files
from orchestration.atomic import write_parquet
from orchestration.settings import ImageSettings, Settings
from orchestration.storage import SITES, Layout

NO_USER_AGENT = (
    "set [images] user_agent before downloading: sites ask for one that names the tool and "
    'a contact, e.g. user_agent = "scoretag/0.1 (by your_name; you@example.org)"'
)


def policy(settings: ImageSettings) -> Policy:
    if not settings.user_agent.strip():
        raise ValueError(NO_USER_AGENT)
    rates = {site: settings.rate_limits.get(site, settings.rate_limit) for site in SITES}
    return Policy(
        user_agent=settings.user_agent.strip(),
        concurrency=settings.concurrency,
        rate_limits=rates,
        retries=settings.retries,
        backoff_s=settings.backoff_s,
        max_wait_s=settings.max_wait_s,
        timeout_s=settings.timeout_s,
    )


def have_image(listed: pl.DataFrame, layout: Layout, settings: Settings) -> pl.Series:
    """Whether each listed post's image is kept: found by the image index, or fetched since
    the index was last refreshed (its file in the fetched layout)."""
    found = located(layout, settings, listed).select("site", "post_id", found=pl.lit(True))
    known = listed.join(found, on=["site", "post_id"], how="left", maintain_order="left")
    fetched = fetched_dir(layout)
    on_disk = [job.target(fetched).is_file() for job in urls.jobs(listed)]
    return known["found"].fill_null(False) | pl.Series(on_disk, dtype=pl.Boolean)


@dataclass(frozen=True)
class Pending:
    urls: pl.DataFrame  # URL_LIST rows still to get
    left_out: dict[str, int] = field(default_factory=dict)  # posts not listed, by reason


def pending(
    layout: Layout,
    settings: Settings,
    site: str | None = None,
    retry_failed: bool = False,
    limit: int | None = None,
) -> Pending:
    """The posts to download: those with a URL and a hash, no image yet, not given up on."""
    posts = current_posts(posts_files(layout), columns=urls.POST_COLUMNS)
    if site:
        posts = posts.filter(pl.col("site") == site)
    listed, left_out = urls.candidates(posts)
    stored = have_image(listed, layout, settings)
    left_out["already stored"] = int(stored.sum())
    listed = listed.filter(~stored)
    if not retry_failed:
        failed = listed["post_key"].is_in(quarantine.given_up(layout).implode())
        left_out["failed before"] = int(failed.sum())
        listed = listed.filter(~failed)
    if limit is not None:
        listed = listed.head(limit)
    return Pending(listed, {reason: n for reason, n in left_out.items() if n})


STORED: dict[str, pl.DataType] = {"post_key": pl.String, "path": pl.String, "hash": pl.String}


def last_stored_path(layout: Layout) -> Path:
    """The files the last download stored (post_key, path, the hash its post gives), which
    image_files' check hashes again."""
    return layout.stage_dir(STAGE) / "fetch_last.parquet"


def _write_stored(outcomes: list[Outcome], layout: Layout) -> None:
    fetched = fetched_dir(layout)
    rows = [
        (o.job.post_key, str(o.job.target(fetched)), o.job.expected)
        for o in outcomes
        if o.status == "fetched"
    ]
    write_parquet(pl.DataFrame(rows, schema=STORED, orient="row"), last_stored_path(layout))


def download(
    layout: Layout,
    settings: ImageSettings,
    listed: pl.DataFrame,
    on_outcome: Callable[[Outcome], None] = lambda o: None,
    on_bytes: Callable[[int], None] = lambda n: None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[Outcome]:
    """Fetch every listed post's image; the failures go to the quarantine table."""
    how = policy(settings)
    outcomes: list[Outcome] = []

    def record(outcome: Outcome) -> None:
        outcomes.append(outcome)
        on_outcome(outcome)

    try:
        jobs = urls.jobs(listed)
        asyncio.run(fetch_all(jobs, fetched_dir(layout), how, record, on_bytes, transport))
    finally:
        quarantine.write_quarantine(outcomes, layout)
        _write_stored(outcomes, layout)
    return outcomes
