"""The demo's labeling session: simulated labelers rate the rating pool through the labeling
app's own HTTP API, exactly as people would through its page.

Each labeler labels its share of the pool: it asks `/api/next`, looks the image up in the
demo's ground truth (its degradation level), and posts a label from it plus its own noise and
bias, or a skip for an image it cannot see (corrupt, huge). Hidden repeats get fresh noise.

Then each compares a few pairs in compare mode: it asks `/api/pairs/next` and posts
`/api/pairs` "left", "right" or "tie" from the two images' ground truth (see
SimulatedLabeler.compare), or "skip" when either image is unusable. Both stop at their target,
counting earlier sessions' work, so a second run adds nothing.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import polars as pl

from scoretag.demo.labeler import PANEL, SimulatedLabeler

SHARES = (1.0, 0.6, 0.4)  # of the pool each panel member labels: they overlap, as people do
PAIRS = (60, 40, 30)  # pair judgments (choices and skips) each panel member makes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def labeling_app(
    pool_path: Path, image_root: Path, store_path: Path, seed: int | None = None
) -> Iterator[str]:
    """The labeling app served on a free loopback port for the duration; yields its URL.
    With `seed`, hidden repeats come at the same turns on every run."""
    import uvicorn

    from assets.labels.app import AppConfig, create_app

    port = free_port()
    config = AppConfig(
        pool_path=pool_path, image_root=image_root, store_path=store_path, rng_seed=seed
    )
    app = create_app(config)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="labeling-app", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _wait(url: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"the labeling app did not start at {url}")


def _ground_truth(images: pl.DataFrame) -> dict[str, tuple[int, bool]]:
    """md5 -> (quality, usable) of every demo image."""
    return {md5: (q, ok) for md5, q, ok in images.select("md5", "quality", "usable").iter_rows()}


def simulate(
    url: str,
    pool: pl.DataFrame,
    images: pl.DataFrame,
    panel: Sequence[SimulatedLabeler] = PANEL,
    shares: Sequence[float] = SHARES,
    pairs: Sequence[int] = PAIRS,
) -> dict[str, Counter]:
    """Every panel member labels its share of the pool through the app at `url`, then
    compares its number of pairs; per labeler, what it did this time ("labels", "skips",
    "choices", "pair_skips")."""
    truth = _ground_truth(images)
    md5_of = dict(
        zip(pool["post_key"], pool["image_path"].str.split(".").list.first(), strict=True)
    )
    done = {}
    with httpx.Client(base_url=url, timeout=30) as client:
        for labeler, share in zip(panel, shares, strict=True):
            target = round(share * pool.height)
            done[labeler.name] = _label_pool(client, labeler, target, truth, md5_of)
        for labeler, target in zip(panel, pairs, strict=True):
            done[labeler.name] += _compare_pairs(client, labeler, target, truth, md5_of)
    return done


def _label_pool(
    client: httpx.Client,
    labeler: SimulatedLabeler,
    target: int,
    truth: dict[str, tuple[int, bool]],
    md5_of: dict[str, str],
) -> Counter:
    """Label until `target` pool posts are labeled or skipped (counting earlier sessions')."""
    progress = client.get("/api/progress", params={"labeler": labeler.name}).raise_for_status()
    done_before = progress.json()["labeled"] + progress.json()["skipped"]
    seen: Counter = Counter()
    counts: Counter = Counter()
    while done_before + len(seen) < target:
        item = client.get("/api/next", params={"labeler": labeler.name}).raise_for_status().json()
        if item.get("done"):
            break
        key = item["post_key"]
        md5 = Path(md5_of[key]).name
        quality, usable = truth.get(md5, (3, False))
        value = int(labeler.rate([md5], [quality], attempt=seen[key])[0]) if usable else "skip"
        client.post(
            "/api/labels", json={"post_key": key, "labeler": labeler.name, "value": value}
        ).raise_for_status()
        seen[key] += 1
        counts["skips" if value == "skip" else "labels"] += 1
    return counts


def _compare_pairs(
    client: httpx.Client,
    labeler: SimulatedLabeler,
    target: int,
    truth: dict[str, tuple[int, bool]],
    md5_of: dict[str, str],
) -> Counter:
    """Compare pairs until `target` pair judgments are made (counting earlier sessions')."""
    progress = client.get("/api/pairs/progress", params={"labeler": labeler.name})
    made = progress.raise_for_status().json()
    done_before = made["choices"] + made["skipped"]
    seen: Counter = Counter()  # pair -> this session's judgments of it: the next one's attempt
    counts: Counter = Counter()
    while done_before + seen.total() < target:
        shown = client.get("/api/pairs/next", params={"labeler": labeler.name})
        pair = shown.raise_for_status().json()
        if pair.get("done"):
            break
        keys = (pair["left"]["post_key"], pair["right"]["post_key"])
        md5s = [Path(md5_of[key]).name for key in keys]
        known = [truth.get(md5, (3, False)) for md5 in md5s]
        quality = [q if usable else None for q, usable in known]
        attempt = seen[frozenset(keys)]
        choice = labeler.compare(*md5s, *quality, attempt=attempt)
        client.post(
            "/api/pairs",
            json={
                "left_key": keys[0],
                "right_key": keys[1],
                "labeler": labeler.name,
                "choice": choice,
                # this labeler's n-th judgment: a retried request is recorded once
                "request_id": f"{labeler.name}/{done_before + seen.total()}",
            },
        ).raise_for_status()
        seen[frozenset(keys)] += 1
        counts["pair_skips" if choice == "skip" else "choices"] += 1
    return counts
