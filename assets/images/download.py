"""Fetching what is missing, as `scoretag images fetch` and the image_files step do it: the
current posts, less those with an image and those given up on, through the downloader, with
every failure written to the quarantine table, even when the run is interrupted."""

from __future__ import annotations

import asyncio
import fcntl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import polars as pl

from assets.images import quarantine, urls
from assets.images.fetch import Outcome, Policy, fetch_all, remove_partials
from assets.images.find import located, scan
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
    """Whether each listed post's image is kept: found by the image index, refreshed first
    (it reads only what changed: the files earlier downloads stored, today's above all)."""
    scan(layout, settings)
    found = located(layout, settings, listed).select("site", "post_id", found=pl.lit(True))
    known = listed.join(found, on=["site", "post_id"], how="left", maintain_order="left")
    return known["found"].fill_null(False)


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


def _write_stored(outcomes: list[Outcome], store: Path, layout: Layout) -> None:
    rows = [
        (o.job.post_key, str(o.job.target(store)), o.job.expected)
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

    with open_store(fetched_dir(layout)) as store:
        try:
            jobs = urls.jobs(listed)
            asyncio.run(fetch_all(jobs, store, how, record, on_bytes, transport))
        finally:
            quarantine.write_quarantine(outcomes, layout)
            _write_stored(outcomes, store, layout)
    return outcomes


@contextmanager
def open_store(fetched: Path) -> Iterator[Path]:
    """Today's (UTC) folder under `fetched`, for one download at a time. A `.running` marker
    stays in it while the download runs: the temporary files of a run killed on another day
    are removed from its folder by the next download."""
    fetched.mkdir(parents=True, exist_ok=True)
    with open(fetched / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(
                f"another download is writing into {fetched}: run one at a time"
            ) from None
        for marker in fetched.glob("*/.running"):
            remove_partials(marker.parent)
            marker.unlink()
        store = fetched / datetime.now(UTC).date().isoformat()
        store.mkdir(exist_ok=True)
        (store / ".running").touch()
        try:
            yield store
        finally:
            (store / ".running").unlink(missing_ok=True)
