"""End to end, with no image placed by hand: a Danbooru API page whose posts' file_url point
at a local HTTP server is ingested, its images fetched by the image_files step, embedded,
drawn into the rating pool and labelled through the labeling app's HTTP API."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
from click.testing import CliRunner

from scoretag.cli import cli
from tests.images.server import ImageServer, danbooru_record, demo_files
from tests.labels.conftest import client_for

POSTS = 24
CONFIG = """
[images]
fetch = true
user_agent = "scoretag-tests/1.0 (by tester; tester@example.org)"
rate_limit = 0
backoff_s = 0.05

[normalize]
min_cohort_size = 5

[pool]
size = 12
min_per_stratum = 1
"""


def run(home: Path, config: Path) -> str:
    args = ["--profile", "demo", "--home", str(home), "--config", str(config), "run"]
    result = CliRunner().invoke(cli, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.output


def embedded_keys(home: Path) -> set[str]:
    keys: set[str] = set()
    for path in (home / "data" / "embeddings").rglob("*.parquet"):
        if "embedding" in pq.read_schema(path).names:
            keys |= set(pl.read_parquet(path, columns=["image_key"])["image_key"])
    return keys


def test_a_page_pointing_at_a_server_is_fetched_embedded_pooled_and_labelled(tmp_path):
    files = demo_files(POSTS, tmp_path / "demo")
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    home = tmp_path / "home"
    with ImageServer() as server:
        for f in files:
            server.add(f.path, f.data)
        page = [danbooru_record(i + 1, f, server.base) for i, f in enumerate(files)]
        inbox = home / "inbox" / "danbooru"
        inbox.mkdir(parents=True)
        (inbox / "posts-page1.json").write_text(json.dumps(page))

        # ingest; the images job: image_files fetches, image_index finds; embed; main
        first = run(home, config)
        fetched = {
            p.stem: p for p in (home / "images" / "fetched").rglob("*.*") if p.name[0] != "."
        }
        assert set(fetched) == {f.md5 for f in files}, first
        assert len(server.hits) == POSTS
        assert {f.md5 for f in files} <= embedded_keys(home), first  # in the same run
        second = run(home, config)
        assert len(server.hits) == POSTS, second  # nothing asked twice
    pool = pl.read_parquet(home / "data" / "rating_pool" / "pool.parquet")
    assert pool.height > 0, second
    assert all(str(home / "images" / "fetched") in str(p) for p in pool["image_path"])
    by_key = {f"danbooru:{i + 1}": f for i, f in enumerate(files)}
    with client_for(home) as api:
        item = api.get("/api/next", params={"labeler": "ann"}).json()
        image = api.get(item["image_url"])
        assert image.status_code == 200 and image.content == by_key[item["post_key"]].data
        answer = api.post(
            "/api/labels", json={"post_key": item["post_key"], "labeler": "ann", "value": 4}
        )
        assert answer.json()["ok"] is True
        progress = api.get("/api/progress", params={"labeler": "ann"}).json()
        assert progress["labeled"] == 1 and progress["total"] == pool.height
