"""Downloading images into the loose layout the locator reads, with httpx's async client.

Each post's file goes to `<store>/<site>/<md5[0:2]>/<md5>.<ext>`, the store being the day's
folder under `<image root>/fetched/` (a Philomena post, which has no md5, is named by its
sha512). It is streamed into a hidden
temporary file beside its target while its md5 (or sha512) is computed, and renamed into place
only once the hash equals the post's: a killed run leaves temporary files (removed by the
next run) and whole, verified files (skipped by it), never a wrong file under a post's name.

Requests are polite: at most `concurrency` at once, at most `rate_limits[site]` per second to
each site, with the profile's User-Agent; a 429 or 503 pauses the whole site for its
Retry-After; timeouts, dropped connections and 5xx are retried with exponential backoff.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from orchestration.atomic import remove_orphans, temporary_name

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
PAUSE_STATUSES = frozenset({429, 503})  # the site asks us to slow down: every request waits
CHUNK = 1 << 16
# The first bytes of every format the embeddings stage decodes.
MAGIC = (
    (b"\xff\xd8\xff", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"\xff\x0a", "jxl"),
    (b"\x00\x00\x00\x0cJXL ", "jxl"),
)


def sniff(head: bytes) -> str | None:
    """The image format the first bytes announce, or None for anything else (HTML, JSON...)."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis", b"heic", b"mif1"):
        return "avif"
    return next((fmt for magic, fmt in MAGIC if head.startswith(magic)), None)


@dataclass(frozen=True)
class Policy:
    """How to ask: the `[images]` settings a download reads."""

    user_agent: str
    concurrency: int = 8
    rate_limits: Mapping[str, float] = field(default_factory=dict)  # requests/s; absent: none
    retries: int = 4  # attempts after the first
    backoff_s: float = 1.0  # the first retry's wait; doubles with each attempt
    max_wait_s: float = 120.0  # the longest backoff or Retry-After honoured
    timeout_s: float = 30.0  # connect, and between two reads of the body


@dataclass(frozen=True)
class Job:
    """One post's image to get."""

    post_key: str
    site: str
    url: str
    md5: str | None
    sha512: str | None
    file_ext: str

    @property
    def hash_name(self) -> str:
        return "md5" if self.md5 else "sha512"

    @property
    def expected(self) -> str:
        return (self.md5 or self.sha512 or "").lower()

    def target(self, store: Path) -> Path:
        key = self.expected
        return store / self.site / key[:2] / f"{key}.{self.file_ext}"


@dataclass(frozen=True)
class Outcome:
    """What became of one job: `fetched`, `skipped` (already stored) or `failed` (reason)."""

    job: Job
    status: str
    reason: str = ""
    http_status: int | None = None
    bytes: int = 0
    attempts: int = 0
    seconds: float = 0.0
    at: float = field(default_factory=time.time)


class RateLimiter:
    """Spaces the requests to each site at least 1/rate seconds apart; `pause` holds a site."""

    def __init__(self, rates: Mapping[str, float]):
        self.rates = dict(rates)
        self.next_at: dict[str, float] = {}
        self.locks: dict[str, asyncio.Lock] = {}

    async def wait(self, site: str) -> None:
        lock = self.locks.setdefault(site, asyncio.Lock())
        async with lock:
            now = time.monotonic()
            start = max(now, self.next_at.get(site, now))
            rate = self.rates.get(site) or 0
            self.next_at[site] = start + (1 / rate if rate > 0 else 0)
            if start > now:
                await asyncio.sleep(start - now)

    def pause(self, site: str, seconds: float) -> None:
        until = time.monotonic() + seconds
        self.next_at[site] = max(self.next_at.get(site, until), until)


class Failure(Exception):
    def __init__(self, reason: str, status: int | None = None, size: int = 0, **how):
        super().__init__(reason)
        self.reason, self.status, self.size = reason, status, size
        self.retry: bool = how.get("retry", False)
        self.wait: float | None = how.get("wait")


def retry_after(value: str | None) -> float | None:
    """Seconds a Retry-After header asks for (a number or an HTTP date), None if absent."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


async def _stream(
    client: httpx.AsyncClient, job: Job, tmp: Path, on_bytes: Callable[[int], None]
) -> int:
    """Stream the body into `tmp`, hashing it; raises Failure unless it is the post's file."""
    digest = hashlib.new(job.hash_name)
    size, head = 0, b""
    try:
        async with client.stream("GET", job.url) as response:
            status = response.status_code
            if status != 200:
                wait = retry_after(response.headers.get("retry-after"))
                retry = status in RETRY_STATUSES
                raise Failure(f"http {status}", status, retry=retry, wait=wait)
            encoded = "content-encoding" in response.headers
            declared = None if encoded else response.headers.get("content-length")
            with tmp.open("wb") as out:
                async for chunk in response.aiter_bytes(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    head = head if len(head) >= 16 else (head + chunk)[:16]
                    size += len(chunk)
                    on_bytes(len(chunk))
    except httpx.TimeoutException as e:
        raise Failure("timeout", None, size, retry=True) from e
    except (httpx.RemoteProtocolError, httpx.ReadError) as e:
        raise Failure("truncated body", 200 if size else None, size, retry=True) from e
    except httpx.TransportError as e:
        raise Failure(f"connection error: {type(e).__name__}", None, size, retry=True) from e
    if declared and declared.isdigit() and int(declared) != size:
        raise Failure("truncated body", 200, size, retry=True)
    if digest.hexdigest() != job.expected:
        reason = f"{job.hash_name} mismatch" if sniff(head) else "not an image"
        raise Failure(reason, 200, size)
    return size


def _backoff(policy: Policy, attempt: int) -> float:
    return min(policy.max_wait_s, policy.backoff_s * 2**attempt * random.uniform(0.5, 1.0))


async def fetch_one(
    client: httpx.AsyncClient,
    limiter: RateLimiter,
    job: Job,
    store: Path,
    policy: Policy,
    on_bytes: Callable[[int], None] = lambda n: None,
) -> Outcome:
    target = job.target(store)
    if target.exists():
        return Outcome(job, "skipped", "already stored")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp, started = temporary_name(target), time.monotonic()
    for attempt in range(policy.retries + 1):
        await limiter.wait(job.site)
        try:
            size = await _stream(client, job, tmp, on_bytes)
        except Failure as failure:
            tmp.unlink(missing_ok=True)
            if not failure.retry or attempt == policy.retries:
                return Outcome(
                    job, "failed", failure.reason, failure.status, failure.size, attempt + 1,
                    time.monotonic() - started,
                )  # fmt: skip
            if failure.status in PAUSE_STATUSES and failure.wait is not None:
                limiter.pause(job.site, min(failure.wait, policy.max_wait_s))
            else:
                await asyncio.sleep(_backoff(policy, attempt))
            continue
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, target)
        return Outcome(job, "fetched", "", 200, size, attempt + 1, time.monotonic() - started)
    raise AssertionError("unreachable")


def remove_partials(store: Path) -> int:
    """Delete the temporary files that killed runs left in `store`; returns how many."""
    folders = store.glob("*/*/") if store.is_dir() else []
    return sum(len(remove_orphans(folder)) for folder in folders)


async def fetch_all(
    jobs: Iterable[Job],
    store: Path,
    policy: Policy,
    on_outcome: Callable[[Outcome], None] = lambda o: None,
    on_bytes: Callable[[int], None] = lambda n: None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[Outcome]:
    """Fetch every job with `policy.concurrency` workers; outcomes in the order they ended."""
    remove_partials(store)
    queue: asyncio.Queue[Job] = asyncio.Queue()
    targets: set[Path] = set()
    for job in jobs:  # posts sharing a file share its target: fetched once
        if job.target(store) not in targets:
            targets.add(job.target(store))
            queue.put_nowait(job)
    limiter, outcomes = RateLimiter(policy.rate_limits), []
    timeout = httpx.Timeout(policy.timeout_s)
    headers = {"User-Agent": policy.user_agent, "Accept-Encoding": "identity"}
    limits = httpx.Limits(max_connections=policy.concurrency)
    async with httpx.AsyncClient(
        headers=headers, timeout=timeout, limits=limits, follow_redirects=True, transport=transport
    ) as client:

        async def worker() -> None:
            while not queue.empty():
                job = queue.get_nowait()
                outcome = await fetch_one(client, limiter, job, store, policy, on_bytes)
                outcomes.append(outcome)
                on_outcome(outcome)

        async with asyncio.TaskGroup() as workers:
            for _ in range(max(1, policy.concurrency)):
                workers.create_task(worker())
    return outcomes
