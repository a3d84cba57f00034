"""normalized_scores over the ingested demo files: newer records win, repeats change nothing,
and the same image on two sites is one image."""

from __future__ import annotations

import shutil

import polars as pl

from assets.ingest.reader import ingest_file
from assets.normalize.normalize import normalize_files
from orchestration.settings import NormalizeSettings


def test_every_current_post_is_normalized_once(demo_layout, demo_scored):
    _, scores = demo_scored
    truth = pl.read_parquet(demo_layout.demo / "posts.parquet").filter(~pl.col("superseded"))
    assert scores.height == truth.height
    assert scores.select("site", "post_id").is_unique().all()
    assert scores["norm_score"].is_between(0, 1).all()


def test_the_newer_api_record_replaces_the_dump_record(demo_layout, demo_scored):
    posts, _ = demo_scored
    from assets.ingest.current import current_posts

    current = current_posts(posts, ["score", "source_file"])
    truth = pl.read_parquet(demo_layout.demo / "posts.parquet")
    refetched = truth.filter(pl.col("superseded")).select("post_id")
    newer = truth.filter(~pl.col("superseded") & (pl.col("source_kind") == "danbooru_api"))
    expected = newer.join(refetched, on="post_id").select("post_id", "score")
    got = current.filter(pl.col("site") == "danbooru").join(expected, on="post_id")
    assert got.height == 20
    assert (got["score"] == got["score_right"]).all()
    assert got["source_file"].str.starts_with("danbooru/posts-").all()


def test_ingesting_the_same_file_again_changes_nothing(demo_layout, demo_scored, tmp_path):
    posts, scores = demo_scored
    dump = demo_layout.inbox / "danbooru" / "danbooru2021-posts000000000000.jsonl"
    copy = tmp_path / "inbox" / "danbooru" / "again.jsonl"
    copy.parent.mkdir(parents=True)
    shutil.copy(dump, copy)
    again = [tmp_path / "again.parquet"]
    ingest_file(
        copy,
        again[0],
        tmp_path / "q.parquet",
        tmp_path / "s.parquet",
        source_file="danbooru/again.jsonl",
    )
    rescored = normalize_files([*posts, *again], NormalizeSettings())
    assert (
        rescored.select("site", "post_id")
        .sort("site", "post_id")
        .equals(scores.select("site", "post_id").sort("site", "post_id"))
    )


def test_cross_site_copies_share_an_image_key(demo_layout, demo_scored):
    _, scores = demo_scored
    truth = pl.read_parquet(demo_layout.demo / "posts.parquet").filter(
        pl.col("has_image") & ~pl.col("superseded") & (pl.col("site") != "derpibooru")
    )
    shared = (
        truth.group_by("md5")
        .agg(pl.col("site").n_unique().alias("sites"))
        .filter(pl.col("sites") > 1)
    )
    keys = scores.group_by("image_key").agg(pl.col("site").n_unique().alias("sites"))
    linked = keys.filter(pl.col("sites") > 1)
    assert set(linked["image_key"]) == set(shared["md5"])
    canonical = scores.filter(pl.col("image_key").is_in(linked["image_key"].implode()))
    assert (
        canonical.group_by("image_key")
        .agg(pl.col("is_canonical").sum())["is_canonical"]
        .eq(1)
        .all()
    )
    derpibooru = scores.filter(pl.col("site") == "derpibooru")
    assert derpibooru["image_key"].str.starts_with("sha512:").all()
