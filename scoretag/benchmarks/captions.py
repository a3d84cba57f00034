"""`scoretag bench captions`: captions with every rule, written as parquet shards.

The catalog rows are synthetic and made in memory (not timed): about 30 tags a post drawn
from a skewed vocabulary with underscores and parentheses, character, copyright and artist
tags both in their lists and among the tags (as the sites give them), meta tags, a quarter
of the posts Philomena-like with `artist:` tags. The timer covers the calibration (quantile
cut-points of the scores), the buckets, the captions (v6 score tags, rating and source tags,
category order, meta tags and a blacklist dropped, underscores, parentheses, duplicates) and
the parquet shards with their manifest. With `style` a vocabulary with families cut by value
(`animagine`, `noobai`), it also covers their cut-points (quantiles of popularity within each
site and rating, of the head's score) and each post's tags, as an export's first run makes
them.
"""

from __future__ import annotations

import os
import resource
import shutil
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from assets.captions.buckets import bucket_of, starts_for
from assets.captions.captions import CaptionRules
from assets.captions.families import freeze, with_tags
from assets.captions.shards import Target, write_shards
from orchestration.settings import DECILE_CUT_POINTS
from scoretag.benchmarks.memory import peak_rss_mb

TARGET_PER_S = 150_000
SITES = ("danbooru", "e621", "gelbooru", "derpibooru")
META = ("highres", "absurdres", "commentary_request", "translated", "bad_id", "md5_mismatch")
RULES = CaptionRules(
    style="v6",
    source_tags={"danbooru": "source_anime", "e621": "source_furry", "derpibooru": "source_pony"},
    blacklist=("watermark", "signature", "tagme"),
)


def _vocabulary(kind: str, size: int) -> pl.Series:
    words = [f"{kind}_{i}_(series_{i % 97})" if i % 5 == 0 else f"{kind}_{i}" for i in range(size)]
    return pl.Series(words, dtype=pl.String)


def _lists(rng: np.random.Generator, vocab: pl.Series, lengths: np.ndarray) -> pl.Series:
    """Tag lists of these lengths without repeats: the i-th tag of a post comes from the i-th
    slice of the vocabulary, low ranks (common tags) the likeliest."""
    total = int(lengths.sum())
    position = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    width = len(vocab) // max(int(lengths.max(initial=1)), 1)
    ranks = position * width + (width * rng.random(total) ** 3).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    values = vocab.gather(ranks).to_arrow()
    return pl.Series(pa.LargeListArray.from_arrays(pa.array(offsets), values))


def synthetic_posts(posts: int, seed: int = 0) -> pl.DataFrame:
    """Catalog rows as the export reads them, with located image files."""
    rng = np.random.default_rng(seed)

    def counts(low: int, high: int) -> np.ndarray:
        return rng.integers(low, high + 1, posts)

    frame = pl.DataFrame(
        {
            "general": _lists(rng, _vocabulary("tag", 40_000), counts(18, 30)),
            "character_tags": _lists(rng, _vocabulary("character", 20_000), counts(0, 3)),
            "copyright_tags": _lists(rng, _vocabulary("series", 3_000), counts(0, 2)),
            "artist_tags": _lists(rng, _vocabulary("artist", 50_000), counts(0, 1)),
            "meta_tags": _lists(rng, pl.Series(META), counts(0, 3).clip(0, len(META))),
            "site": pl.Series(rng.choice(SITES, posts)),
            "post_id": np.arange(posts, dtype=np.int64),
            "rating": pl.Series(rng.choice(["g", "s", "q", "e"], posts)),
            "score": rng.beta(4, 4, posts),
            # what vocabularies' families read: popularity, the head's percentile, the year
            "popularity": rng.random(posts),
            "percentile": rng.random(posts),
            "year": rng.integers(2005, 2027, posts).astype(np.float64),
            "width": rng.integers(512, 4096, posts).astype(np.int32),
            "height": rng.integers(512, 4096, posts).astype(np.int32),
        }
    )
    philomena = pl.col("site") == "derpibooru"
    artists_in_tags = pl.when(philomena).then(
        pl.col("artist_tags").list.eval(pl.lit("artist:") + pl.element())
    )
    tags = pl.concat_list(
        "general",
        "character_tags",
        "copyright_tags",
        artists_in_tags.otherwise(pl.col("artist_tags")),
        "meta_tags",
    )
    md5 = pl.col("post_id").cast(pl.String).str.pad_start(32, "0")
    return frame.select(
        pl.exclude("general"),
        tags=tags,
        md5=md5,
        image_key=md5,
        filename=md5 + ".jpg",
        image_path=pl.lit("/data/images/") + md5 + ".jpg",
        file_ext=pl.lit("jpg"),
        tar_offset=pl.lit(None, pl.Int64),
        tar_length=pl.lit(None, pl.Int64),
        species_tags=pl.lit(None, pl.List(pl.String)),
    )


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def captions_bench(
    posts: int = 1_000_000,
    shard_size: int = 10_000,
    seed: int = 0,
    workdir: Path | None = None,
    style: str = "v6",
) -> dict:
    """Captions per second, from catalog rows in memory to parquet shards on disk."""
    rules = replace(RULES, style=style, vocabulary=None)
    families = rules.words.cut_families()
    rows = synthetic_posts(posts, seed)
    out = Path(tempfile.mkdtemp(prefix="scoretag-bench-captions-", dir=workdir))
    try:
        start, cpu = time.perf_counter(), _cpu_seconds()
        scores = rows["score"].to_numpy()
        starts = starts_for("quantile", DECILE_CUT_POINTS, scores)
        rows = rows.with_columns(bucket=pl.Series(bucket_of(scores, starts)))
        scope = {"sites": [], "ratings": []}
        cuts = {f.name: freeze(rows, f, scope, datetime.now(UTC)) for f in families}
        rows = with_tags(rows, families, cuts)
        target = Target("parquet", out, shard_size)
        outcome = write_shards(rows, rules, target, {"bench": "captions"})
        seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
        written = sum(s["bytes"] for s in outcome.manifest["shards"])
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {
        "bench": "captions",
        "posts": posts,
        "shards": len(outcome.manifest["shards"]),
        "style": style,
        "seconds": round(seconds, 3),
        # CPU time of this process: on a shared machine, what the work cost whatever else ran
        "cpu_seconds": round(cpu, 3),
        "captions_per_s": round(posts / seconds),
        "target_per_s": TARGET_PER_S,
        "meets_target": posts / seconds >= TARGET_PER_S,
        "bytes": written,
        "cores": os.cpu_count(),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
