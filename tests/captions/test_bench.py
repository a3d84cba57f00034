"""`scoretag bench captions` on a few thousand posts: the figures it reports (speed targets are
checked by the bench itself, never by a timed test)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from scoretag.benchmarks.captions import captions_bench, synthetic_posts
from scoretag.cli import cli


def test_reports_captions_per_second_for_every_post():
    result = captions_bench(posts=5_000, shard_size=1_000)
    assert result["bench"] == "captions" and result["posts"] == 5_000
    assert result["shards"] == 5 and result["style"] == "v6"
    assert result["captions_per_s"] > 0 and result["target_per_s"] == 150_000
    assert result["bytes"] > 0 and result["seconds"] > 0


def test_a_vocabulary_with_families_is_timed_with_its_cut_points_and_tags(tmp_path):
    result = captions_bench(posts=3_000, shard_size=1_000, style="noobai", workdir=tmp_path)
    assert result["style"] == "noobai" and result["shards"] == 3
    assert result["captions_per_s"] > 0


def test_synthetic_posts_look_like_the_catalog():
    rows = synthetic_posts(2_000)
    lengths = rows["tags"].list.len()
    assert 25 <= lengths.mean() <= 35
    tags = rows["tags"].explode()
    assert tags.str.contains("_").mean() > 0.9 and tags.str.contains(r"\(").any()
    # the category tags are among the tags, as the sites give them
    first = rows.row(0, named=True)
    assert set(first["character_tags"]) <= set(first["tags"])
    philomena = rows.filter(rows["site"] == "derpibooru").explode("tags")["tags"]
    assert philomena.str.starts_with("artist:").any()


def test_cli_prints_one_json_object(tmp_path):
    result = CliRunner().invoke(
        cli, ["bench", "captions", "--posts", "3000", "--workdir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["posts"] == 3000
