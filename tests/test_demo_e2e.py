"""`scoretag demo run` end to end, as `make demo` runs it, on a fresh storage root."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl
from click.testing import CliRunner

from assets.captions.manifest import read
from assets.captions.paths import export_dir
from assets.head.paths import registry
from assets.labels.paths import labels_path
from assets.labels.store import LabelStore
from assets.normalize.assets import output_path
from assets.pool.paths import pool_path
from orchestration.storage import Layout
from scoretag.cli import cli

RAW_FILES = 19  # every demo file but e621's tag table, which is read beside its export


def _demo_run(home: Path):
    result = CliRunner().invoke(cli, ["--profile", "demo", "--home", str(home), "demo", "run"])
    assert result.exit_code == 0, result.output
    return result.output


def test_demo_run_ingests_normalizes_checks_and_summarizes(tmp_path: Path):
    output = _demo_run(tmp_path)
    for expected in (
        "Demo data (seed 0",
        "danbooru_dump",
        "600 images",
        "all succeeded",
        "raw_posts (every ingested file)",
        "normalized_scores: norm_score deciles",
        "raw_posts_schema",
        "norm_score_uniform",
        "randomly initialised (untrained)",
        "embeddings: 592 images in",  # 600 demo images, 8 of them unusable:
        "truncated 3",
        "too_large 3",
        "aesthetic_head",  # the head's metrics, the baselines beside them, the gate
        "constant",
        "ridge",
        "gate passed",
        "these metrics measure no quality signal",
        "posts per score bucket",  # the catalog's buckets and a named query
        "scoretag query top_posts",
        "scores from a head on an untrained backbone: no quality signal",
        "caption_shards (parquet)",  # the export and three of its captions, with a warning
        "three captions, best bucket first:\n  score_9, score_8_up, score_7_up",
        "these score tags mean nothing yet",
        "make ui",
        str(tmp_path / "inbox"),
    ):
        assert expected in output, expected
    with dg.DagsterInstance.from_config(str(tmp_path / "dagster")) as instance:
        runs = instance.get_run_records()
        jobs = sorted(r.dagster_run.job_name for r in runs)
        # One ingest run per raw file, the images job (fetch when on, refresh the image
        # index) after them, the pool draw, and main.
        assert jobs == ["images"] + ["ingest"] * RAW_FILES + ["main", "pool"]
        assert all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    scores = pl.read_parquet(output_path(Layout(home=tmp_path)))
    truth = pl.read_parquet(tmp_path / "demo" / "posts.parquet")
    assert scores.height == truth.filter(~pl.col("superseded")).height
    assert set(scores["site"]) == {"danbooru", "e621", "derpibooru", "gelbooru"}

    with LabelStore(tmp_path / "labels.sqlite", read_only=True) as store:
        events = store.events()
    assert set(events["labeler"]) == {"simulated-steady", "simulated-harsh", "simulated-lenient"}
    labels = pl.read_parquet(labels_path(Layout(home=tmp_path)))
    assert labels.height == 420 - events.filter(pl.col("kind") == "skip")["post_key"].n_unique()

    heads = registry(Layout(home=tmp_path))
    first_head = heads.active_version()
    assert first_head is not None and len(heads.cards()) == 1
    exported = export_dir(Layout(home=tmp_path), "parquet")
    manifest = read(exported)
    assert manifest["head_version"] == first_head and manifest["rows"] > 0
    assert manifest["quality_signal"].startswith("none")
    shards = {p.name: p.stat().st_mtime_ns for p in exported.iterdir()}

    again = _demo_run(tmp_path)  # nothing changed: nothing ingested or labeled twice
    assert "all succeeded" in again
    with dg.DagsterInstance.from_config(str(tmp_path / "dagster")) as instance:
        jobs = sorted(r.dagster_run.job_name for r in instance.get_run_records())
    # no file ingested again; the image index is refreshed again (an incremental scan)
    assert jobs == ["images"] * 2 + ["ingest"] * RAW_FILES + ["main", "main", "pool", "pool"]
    assert pl.read_parquet(output_path(Layout(home=tmp_path))).equals(scores)
    with LabelStore(tmp_path / "labels.sqlite", read_only=True) as store:
        assert store.events().height == events.height
    # the same labels train the same head (same version), which stays active
    assert heads.active_version() == first_head and len(heads.cards()) == 1
    # ... so the same captions: no shard (nor the manifest) is written again
    assert {p.name: p.stat().st_mtime_ns for p in exported.iterdir()} == shards

    pool = pl.read_parquet(pool_path(Layout(home=tmp_path)))
    home = ["--profile", "demo", "--home", str(tmp_path)]
    result = CliRunner().invoke(cli, [*home, "head", "uncertainty-round"])
    assert result.exit_code == 0, result.output
    assert "40 posts added" in result.output
    grown = pl.read_parquet(pool_path(Layout(home=tmp_path)))
    assert grown.head(pool.height).equals(pool) and grown.height == pool.height + 40
    assert set(grown.tail(40)["round_kind"]) == {"uncertainty"}
