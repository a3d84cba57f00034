"""`scoretag bench daily`: a day in the life of a catalog of N posts: what a scheduled run costs
once the catalog is built (`daily_seconds`), against building it (`full_seconds`).

Setup (not timed): a storage root whose raw_posts hold N posts of four sites in files of at
most a million posts (written as raw_posts tables, the output of ingestion: parsing the bulk
dumps is not in `full_seconds`, which makes `daily_over_full` harder to meet, not easier),
images listed by an index file (`[images] sources`, layout index) that points every image at
one of a few hundred small PNG files, and an active ridge head of synthetic labels.

`full_seconds`: a run over all of it, each stage as its asset runs it: embeddings (synthetic
unit vectors of `dim` dimensions in shards of the embeddings stage's size, written by the
embedding store), normalized_scores, scored_catalog (posts refreshed, scores written, the
asset's counts and histogram, then the CHECKPOINT closing it writes) and caption_shards (the
parquet format). `daily_seconds`: then a new raw file of `new` posts uploaded the day before
(an e621 db_export-format CSV) is ingested and the same stages run again. Each run is timed
in a fresh process, as Dagster runs steps: `peak_rss_mb` is the daily process's (the whole
day), `full_peak_rss_mb` the full run's; `peaks_full_mb` and `peaks_daily_mb` give the peak as
it stood after each stage (`start`: the process with its imports), so a stage that raised it
shows. Left out, named in `excluded`: the image index
refresh (`scoretag bench images` times it) and asset checks.
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from scoretag.benchmarks.ingest import _chunk, _in_child, _vocabulary

SITES = {"danbooru": 0.40, "e621": 0.35, "gelbooru": 0.15, "derpibooru": 0.10}
FILE_POSTS = 1_000_000
IMAGE_FILES = 256
LABELS = 4_096
KEYED = ["site", "post_id", "md5", "sha512"]  # what an image key is made of
TAKEN = datetime(2026, 11, 30, tzinfo=UTC)  # when the bulk files were taken
DAY = datetime(2026, 12, 1, tzinfo=UTC)  # the day whose new posts arrive
FIRST_UPLOAD = datetime(2008, 1, 1, tzinfo=UTC)
EXCLUDED = [
    "parsing the bulk raw files (written as raw_posts tables)",
    "the image index refresh (scoretag bench images)",
    "asset checks",
]


def _config(home: Path) -> Path:
    path = home / "scoretag.toml"
    path.write_text(
        '[images]\nsources = [{ path = "", index = "index.parquet" }]\n\n'
        '[captions]\nformats = ["parquet"]\n'
    )
    return path


def _created(rng: np.random.Generator, n: int) -> np.ndarray:
    """Upload times from 2008 to the day before the files were taken, more posts each year
    (density growing linearly), as boorus grow."""
    span = (TAKEN - FIRST_UPLOAD).total_seconds()
    seconds = span * np.sqrt(rng.random(n))
    return (FIRST_UPLOAD.timestamp() + seconds) * 1e6


def _bulk_file(rng, vocab, site: str, first_id: int, n: int, name: str) -> pl.DataFrame:
    """`n` posts of `site` as ingestion writes them (assets/ingest/schema.POSTS)."""
    from assets.ingest.schema import POSTS

    up = rng.poisson(30, n)
    down = rng.poisson(2, n)
    fav = rng.poisson(50, n)
    digests = rng.bytes(16 * n).hex()
    hashes = [digests[32 * i : 32 * (i + 1)] for i in range(n)]
    philomena = site == "derpibooru"
    tags = pl.Series(vocab).sample(n * 12, with_replacement=True, seed=int(rng.integers(1 << 31)))
    frame = pl.DataFrame(
        {
            "site": site,
            "post_id": np.arange(first_id, first_id + n),
            "md5": None if philomena else hashes,
            "sha512": [h * 4 for h in hashes] if philomena else None,
            "created_at": pl.Series(_created(rng, n).astype(np.int64)).cast(POSTS["created_at"]),
            "updated_at": TAKEN,
            "rating": rng.choice(["g", "s", "q", "e"], n, p=[0.4, 0.3, 0.15, 0.15]),
            "score": up - down,
            "up_votes": None if site == "gelbooru" else up,
            "down_votes": None if site == "gelbooru" else down,
            "favorites": None if site == "gelbooru" else fav,
            "width": rng.integers(400, 4000, n),
            "height": rng.integers(400, 4000, n),
            "file_ext": "png",
            "tags": tags.reshape((n, 12)).arr.to_list(),
            "is_deleted": rng.random(n) < 0.03,
            "source_file": f"{site}/{name}",
            "record": np.arange(1, n + 1),
            "ingested_at": TAKEN,
        }
    )
    return frame.select(
        [
            (pl.col(c) if c in frame.columns else pl.lit(None)).cast(t).alias(c)
            for c, t in POSTS.items()
        ]
    )


def _setup(home: Path, posts: int, new: int, dim: int, seed: int) -> dict:
    """The storage root, the image files and index, and the head (nothing timed)."""
    from PIL import Image

    from assets.images.keys import with_image_key
    from assets.ingest.paths import RawFile
    from orchestration.storage import Layout

    rng = np.random.default_rng(seed)
    vocab = _vocabulary(rng)
    layout = Layout(home=home).ensure()
    files, keys = 0, []
    for site, share in SITES.items():
        count = int(round(posts * share))
        for start in range(0, count, FILE_POSTS):
            n = min(FILE_POSTS, count - start)
            name = f"bulk-{start // FILE_POSTS:03d}.jsonl"
            frame = _bulk_file(rng, vocab, site, start + 1, n, name)
            path = RawFile(site, name).output(layout, "posts")
            path.parent.mkdir(parents=True, exist_ok=True)
            frame.write_parquet(path)
            keys.append(with_image_key(frame.select(KEYED)).select(key="image_key"))
            files += 1
    # The new day's posts: e621, in a db_export-format CSV, with md5s of their own.
    csv = layout.site_inbox("e621") / "posts-new-2026-12-01.csv"
    csv.parent.mkdir(parents=True, exist_ok=True)
    chunk = _chunk(rng, vocab, 50_000_000, new)
    uploaded = (
        DAY
        - timedelta(seconds=1)
        - pl.Series(rng.integers(0, 86_400_000_000, new)).cast(pl.Duration("us"))
    )
    chunk = chunk.with_columns(
        created_at=uploaded.dt.strftime("%Y-%m-%d %H:%M:%S%.6f"),
        updated_at=pl.lit((DAY - timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S.%f")),
        is_deleted=pl.lit("f"),
    )
    from scoretag.demo.writers.e621 import CSV_COLUMNS

    chunk.select(CSV_COLUMNS).write_csv(csv)
    keys.append(chunk.select(key="md5"))
    # Images: a few hundred small PNGs, every post's image one of them, listed by an index.
    folder = layout.images / "png"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(IMAGE_FILES):
        Image.new("RGB", (64 + i % 7, 64 + i % 5), (i, 255 - i, 128)).save(folder / f"{i}.png")
    every = pl.concat(keys)
    every.select(
        image_key="key", path=pl.format("png/{}.png", pl.int_range(pl.len()) % IMAGE_FILES)
    ).write_parquet(layout.images / "index.parquet")
    _config(home)
    _head(layout, dim, rng.integers(1 << 31))
    return {"raw_files": files, "images": every.height}


def _head(layout, dim: int, seed: int) -> None:
    """A ridge head on LABELS synthetic labels, saved and activated."""
    from assets.head.artifact import build_card
    from assets.head.models import fit_ridge
    from assets.head.paths import registry

    rng = np.random.default_rng(int(seed))
    X = rng.standard_normal((LABELS, dim)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    y = np.clip(0.5 + 2 * X[:, 0] + rng.normal(0, 0.05, LABELS), 0, 1)
    net = fit_ridge(X, y).net()
    heads = registry(layout)
    card = build_card(net, backbone={"model": "bench-synthetic"}, head_type="ridge", seed=0)
    head = heads.save(net, card)
    heads.activate(head.version, "bench")


def _profile(home: Path):
    from orchestration.profile import load_profile

    return load_profile("production", str(home), str(home / "scoretag.toml"))


def _store(layout, dim: int):
    from assets.embeddings.store import EmbeddingStore
    from scoretag.benchmarks.catalog import _identity

    return EmbeddingStore(layout.data / "embeddings", _identity(dim)).ensure()


def _embed(layout, dim: int, files) -> int:
    """Synthetic unit vectors for the images of these raw files not embedded yet, in shards
    of the embeddings stage's size, one partition per raw file."""
    from assets.images.keys import with_image_key
    from assets.normalize.normalize import file_key
    from orchestration import objectstore
    from orchestration.settings import EmbedSettings

    store = _store(layout, dim)
    rows = EmbedSettings().shard_size
    rng = np.random.default_rng(len(files))
    done = 0
    for path in files:
        partition = file_key(path)  # the raw file, as the embeddings stage names partitions
        if store.shards(partition):
            continue
        frame = with_image_key(objectstore.read_parquet(path, KEYED))
        keys = frame["image_key"].unique(maintain_order=True).to_list()
        for start in range(0, len(keys), rows):
            chunk = keys[start : start + rows]
            v = rng.standard_normal((len(chunk), store.identity.embed_dim), dtype=np.float32)
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            store.write_shard(partition, chunk, v.astype(np.float16))
        done += len(keys)
    return done


def _run(home: str, dim: int, ingest: bool, results) -> None:
    """One scheduled run on `home`, each stage timed; put on `results`."""
    from assets.captions.export import export_catalog
    from assets.captions.paths import export_dir
    from assets.captions.requests import images_of, request_for
    from assets.catalog.refresh import refresh
    from assets.catalog.writer import (
        apply_retention,
        counts,
        open_catalog,
        score_histogram,
        score_missing,
        sync_heads,
    )
    from assets.head.paths import registry
    from assets.ingest.paths import RawFile, posts_files
    from assets.ingest.reader import ingest_file
    from assets.normalize.assets import STAGE, scores_root
    from assets.normalize.normalize import update
    from scoretag.benchmarks.memory import peak_rss_mb

    profile = _profile(Path(home))
    layout, settings = profile.layout, profile.settings
    seconds: dict[str, float] = {}
    peaks: dict[str, float] = {"start": round(peak_rss_mb(), 1)}
    facts: dict = {}

    def timed(name: str, fn, *args, **kwargs):
        started = time.perf_counter()
        value = fn(*args, **kwargs)
        seconds[name] = round(time.perf_counter() - started, 3)
        peaks[name] = round(peak_rss_mb(), 1)  # the stage raised the peak if above the last
        return value

    if ingest:
        raw = RawFile("e621", "posts-new-2026-12-01.csv")
        tables = [raw.output(layout, t) for t in ("posts", "quarantine", "skipped")]
        report = timed(
            "ingest", ingest_file, raw.path(layout), *tables, site="e621", source_file=raw.key
        )
        facts["ingested"] = report.posts
    files = posts_files(layout)
    facts["embedded"] = timed("embed", _embed, layout, dim, files)
    outcome = timed(
        "normalize",
        update,
        scores_root(layout),
        files,
        settings.normalize,
        layout.stage_dir(STAGE) / "scratch",
    )
    facts["normalize"] = {
        "mode": outcome.mode,
        "groups": outcome.groups,
        "rows_scored": outcome.rows,
        "parts_written": outcome.parts_written,
        "changes": outcome.changes,
        "phases": outcome.phases,
    }
    now = datetime.now(UTC)
    heads, store = registry(layout), _store(layout, dim)

    def catalog():
        with open_catalog(layout.catalog, memory_mb=settings.catalog.memory_mb) as con:
            done = refresh(con, layout, now)
            active = sync_heads(con, heads)
            scored = score_missing(con, heads.load(active), store, settings.catalog.rerank_growth)
            apply_retention(con, settings.catalog.keep_heads)
            held = counts(con, active)
            score_histogram(con, active)
            started = time.perf_counter()
            con.execute("CHECKPOINT")
            checkpoint = time.perf_counter() - started
        return done, scored, held, checkpoint

    done, scored, held, checkpoint = timed("catalog", catalog)
    seconds["catalog_checkpoint"] = round(checkpoint, 3)
    facts["catalog"] = {
        "refresh": done.mode,
        "written": done.written,
        "updated": done.updated,
        "dropped": done.dropped,
        "scored": scored.scored,
        "posts": held["posts"],
        "phases": {k: round(v, 3) for k, v in (scored.phases or {}).items()},
    }
    folder = export_dir(layout, "parquet")
    request = request_for(profile, "parquet", folder)
    result = timed("export", export_catalog, layout.catalog, request, images_of(profile), True, now)
    facts["export"] = {
        "rows": result.rows,
        "incremental": result.incremental,
        "why": result.why,
        "shards": result.shards,
        "phases": result.phases,
    }
    results.put(
        {"seconds": seconds, "facts": facts, "peaks": peaks, "peak_rss_mb": peaks["export"]}
    )


def daily_bench(
    posts: int = 10_000_000,
    new: int = 100_000,
    dim: int = 32,
    seed: int = 0,
    workdir: Path | None = None,
) -> dict:
    """Build a catalog of `posts` posts, then time a day bringing `new` posts."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="scoretag-bench-daily-", dir=workdir) as tmp:
        home = Path(tmp) / "home"
        built = _setup(home, posts, new, dim, seed)
        setup_s = time.perf_counter() - started
        full = _in_child(_run, str(home), dim, False)
        # The day comes long after the build: what the build left to write back to disk is
        # written before it starts, not during its reads (not timed).
        os.sync()
        day = _in_child(_run, str(home), dim, True)
    full_s = sum(v for k, v in full["seconds"].items() if k != "catalog_checkpoint")
    daily_s = sum(v for k, v in day["seconds"].items() if k != "catalog_checkpoint")
    return {
        "bench": "daily",
        "cores": os.cpu_count(),
        "posts": posts,
        "new": new,
        "dim": dim,
        "raw_files": built["raw_files"],
        "full_seconds": round(full_s, 2),
        "daily_seconds": round(daily_s, 2),
        "daily_over_full": round(daily_s / full_s, 4),
        "peak_rss_mb": day["peak_rss_mb"],
        "full_peak_rss_mb": full["peak_rss_mb"],
        "stages_full": full["seconds"],
        "stages_daily": day["seconds"],
        "peaks_full_mb": full["peaks"],
        "peaks_daily_mb": day["peaks"],
        "full": full["facts"],
        "daily": day["facts"],
        "excluded": EXCLUDED,
        "setup_seconds": round(setup_s, 1),
    }
