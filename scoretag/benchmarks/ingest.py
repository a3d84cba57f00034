"""`scoretag bench ingest`: ingest + normalize an e621 db_export of N posts, against DuckDB's
plain `COPY (SELECT * FROM read_csv(...)) TO 'x.parquet'` over the same file: the cost of
just reading every column and writing it back.

Each phase runs in a fresh process, as Dagster runs each asset step, so its time and peak
memory are its own; `peak_rss_mb` is the larger of the two steps'. A step's peak is its
process's own high-water mark (VmHWM on Linux): getrusage's ru_maxrss of a spawned process
starts at its parent's peak (Linux keeps it across exec), and the parent has just written the
CSV. Each step imports the benchmarks package (torch with it, as a Dagster step imports the
code location): a fixed part of each step's peak, whatever N.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from scoretag.demo.writers.e621 import CSV_COLUMNS

CHUNK = 100_000
VOCABULARY = 4_000
WORDS = (
    "red",
    "blue",
    "long",
    "short",
    "hair",
    "eyes",
    "tail",
    "fur",
    "wings",
    "horn",
    "smile",
    "open",
    "mouth",
    "standing",
    "sitting",
    "female",
    "male",
    "anthro",
    "feral",
    "canine",
    "dragon",
    "fox",
    "wolf",
    "cat",
    "bird",
    "scales",
    "clothing",
    "shirt",
    "night",
    "sky",
    "grass",
    "water",
    "tree",
    "background",
    "simple",
    "detailed",
    "solo",
    "duo",
    "group",
    "looking",
    "viewer",
    "teeth",
    "tongue",
    "claws",
    "paws",
    "hat",
)


def _vocabulary(rng: np.random.Generator) -> np.ndarray:
    first = rng.choice(WORDS, VOCABULARY)
    second = rng.choice(WORDS, VOCABULARY)
    names = [
        f"{a}_{b}{i % 97}" if i % 4 else f"{a}_{b}"
        for i, (a, b) in enumerate(zip(first, second, strict=True))
    ]
    return np.array(list(dict.fromkeys(names)))


def _tag_strings(rng: np.random.Generator, vocab: np.ndarray, n: int) -> pl.Series:
    """n space-joined tag strings of 5-60 tags each (about 20 on average, as most posts have
    a modest tag list), common tags far more common."""
    counts = np.minimum(5 + rng.poisson(15, n), 60)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    weights = 1.0 / np.arange(1, len(vocab) + 1) ** 0.9
    flat = rng.choice(len(vocab), size=int(offsets[-1]), p=weights / weights.sum())
    values = pl.Series(vocab).gather(flat).to_arrow()
    lists = pa.LargeListArray.from_arrays(pa.array(offsets), values)
    return pl.from_arrow(lists).list.join(" ")


def _timestamps(rng: np.random.Generator, n: int) -> pl.Series:
    start, end = 1_170_000_000, 1_792_000_000  # 2007 to 2026
    seconds = rng.integers(start, end, n) * 1_000_000 + rng.integers(0, 1_000_000, n)
    return pl.Series(seconds).cast(pl.Datetime("us")).dt.strftime("%Y-%m-%d %H:%M:%S%.6f")


SOURCES = (
    "https://www.pixiv.net/artworks/105463162",
    "https://www.furaffinity.net/view/38293642/\nhttps://twitter.com/i/status/13075263",
)


def _chunk(rng: np.random.Generator, vocab: np.ndarray, first_id: int, n: int) -> pl.DataFrame:
    up = rng.poisson(40, n)
    down = rng.poisson(2, n)
    digests = rng.bytes(16 * n)
    md5 = [digests[i : i + 16].hex() for i in range(0, 16 * n, 16)]
    ids = np.arange(first_id, first_id + n)

    def flag(p: float) -> np.ndarray:
        return np.where(rng.random(n) < p, "t", "f")

    columns = {
        "id": ids,
        "uploader_id": rng.integers(1, 900_000, n),
        "created_at": _timestamps(rng, n),
        "md5": md5,
        "source": rng.choice(SOURCES, n, p=[0.9, 0.1]),
        "rating": rng.choice(["s", "q", "e"], n),
        "image_width": rng.integers(400, 4000, n),
        "image_height": rng.integers(400, 4000, n),
        "tag_string": _tag_strings(rng, vocab, n),
        "locked_tags": [None] * n,
        "fav_count": rng.poisson(60, n),
        "file_ext": rng.choice(["jpg", "png", "webm"], n),
        "parent_id": np.where(rng.random(n) < 0.05, ids // 2, -1),
        "change_seq": ids * 7,
        "approver_id": rng.integers(1, 9000, n),
        "file_size": rng.integers(50_000, 9_000_000, n),
        "comment_count": rng.poisson(2, n),
        "description": [None] * n,
        "duration": [None] * n,
        "updated_at": _timestamps(rng, n),
        "is_deleted": flag(0.04),
        "is_pending": flag(0.01),
        "is_flagged": flag(0.005),
        "score": up - down,
        "up_score": up,
        "down_score": -down,
        "is_rating_locked": flag(0.02),
        "is_status_locked": flag(0.01),
        "is_note_locked": flag(0.0),
        "bg_color": [None] * n,
    }
    frame = pl.DataFrame(columns)
    return frame.with_columns(parent_id=pl.when(pl.col("parent_id") >= 0).then("parent_id"))


def write_e621_export(path: Path, posts: int, seed: int = 0) -> int:
    """A db_export-shaped `posts-*.csv` of `posts` rows, written chunk by chunk."""
    rng = np.random.default_rng(seed)
    vocab = _vocabulary(rng)
    with path.open("wb") as f:
        for start in range(0, posts, CHUNK):
            chunk = _chunk(rng, vocab, start + 1, min(CHUNK, posts - start))
            chunk.select(CSV_COLUMNS).write_csv(f, include_header=start == 0)
    return path.stat().st_size


def _ingest(csv: Path, work: Path, results) -> None:
    from assets.ingest.reader import ingest_file
    from scoretag.benchmarks.memory import peak_rss_mb

    started = time.perf_counter()
    report = ingest_file(
        csv,
        work / "posts.parquet",
        work / "q.parquet",
        work / "s.parquet",
        site="e621",
        source_file=f"e621/{csv.name}",
    )
    results.put(
        {
            "posts": report.posts,
            "quarantined": report.quarantined,
            "seconds": time.perf_counter() - started,
            "peak_rss_mb": peak_rss_mb(),
        }
    )


def _normalize(work: Path, results) -> None:
    from assets.normalize.normalize import update
    from orchestration.settings import NormalizeSettings
    from scoretag.benchmarks.memory import peak_rss_mb

    started = time.perf_counter()
    # As the asset runs it: parts written under the stage folder, nothing read back.
    update(work / "normalized", [work / "posts.parquet"], NormalizeSettings(), work / "scratch")
    results.put({"seconds": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb()})


def _copy(csv: Path, work: Path, results) -> None:
    import duckdb

    started = time.perf_counter()
    duckdb.sql(
        f"COPY (SELECT * FROM read_csv('{csv}')) TO '{work / 'copy.parquet'}' (FORMAT parquet)"
    )
    results.put({"duckdb_copy_seconds": time.perf_counter() - started})


def _in_child(target, *args) -> dict:
    """What `target` reports from a fresh process; an error if that process dies first (a
    step killed for memory would otherwise leave the bench waiting for ever)."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=target, args=(*args, results))
    process.start()
    while True:
        alive = process.is_alive()
        try:
            result = results.get(timeout=1)
            break
        except queue.Empty:
            if not alive:
                process.join()
                raise RuntimeError(
                    f"{target.__name__} exited ({process.exitcode}) without a result"
                ) from None
    process.join()
    return result


def ingest_bench(posts: int = 2_000_000, seed: int = 0, workdir: Path | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="scoretag-bench-", dir=workdir) as tmp:
        work = Path(tmp)
        csv = work / "posts-2026-11-01.csv"
        size = write_e621_export(csv, posts, seed)
        copy = _in_child(_copy, csv, work)
        # Each step in a fresh process, as Dagster's executor runs each asset.
        ingest = _in_child(_ingest, csv, work)
        normalize = _in_child(_normalize, work)
    seconds = ingest["seconds"] + normalize["seconds"]
    return {
        "bench": "ingest",
        "posts": posts,
        "csv_mb": round(size / 1e6, 1),
        "cores": os.cpu_count(),
        "seconds": round(seconds, 2),
        "posts_per_s": round(posts / seconds),
        "ingest_seconds": round(ingest["seconds"], 2),
        "normalize_seconds": round(normalize["seconds"], 2),
        "duckdb_copy_seconds": round(copy["duckdb_copy_seconds"], 2),
        "ratio_to_copy": round(seconds / copy["duckdb_copy_seconds"], 2),
        "peak_rss_mb": round(max(ingest["peak_rss_mb"], normalize["peak_rss_mb"]), 1),
        "ingest_peak_rss_mb": round(ingest["peak_rss_mb"], 1),
        "normalize_peak_rss_mb": round(normalize["peak_rss_mb"], 1),
        "posts_loaded": ingest["posts"],
        "quarantined": ingest["quarantined"],
    }
