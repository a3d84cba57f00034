"""`scoretag ingest`: into the pipeline, or only to a parquet file."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import polars as pl
from click.testing import CliRunner

from scoretag.cli import cli

DUMP = ("danbooru", "danbooru2021-posts000000000000.jsonl")
XML = ("gelbooru", "index-2017-06-03.xml")


def _copy(demo_layout, tmp_path: Path, site: str, name: str) -> Path:
    target = tmp_path / "dumps" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(demo_layout.inbox / site / name, target)
    return target


def test_out_writes_posts_and_side_tables_without_dagster(demo_layout, tmp_path: Path):
    files = [_copy(demo_layout, tmp_path, *f) for f in (DUMP, XML)]
    out = tmp_path / "read" / "posts.parquet"
    result = CliRunner().invoke(
        cli, ["--home", str(tmp_path / "home"), "ingest", *map(str, files), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    posts = pl.read_parquet(out)
    assert posts.height == 550 and set(posts["site"]) == {"danbooru", "gelbooru"}
    quarantine = pl.read_parquet(tmp_path / "read" / "posts.quarantine.parquet")
    assert quarantine.height == 2
    assert not (tmp_path / "home" / "dagster").exists()  # no instance was touched
    assert "danbooru_dump" in result.output and "gelbooru_xml" in result.output


def test_out_reports_a_file_it_cannot_read_and_fails(tmp_path: Path):
    bad = tmp_path / "notes.txt"
    bad.write_text("just some notes\n")
    result = CliRunner().invoke(
        cli,
        [
            "--home",
            str(tmp_path / "home"),
            "ingest",
            str(bad),
            "--out",
            str(tmp_path / "posts.parquet"),
        ],
    )
    assert result.exit_code == 1
    assert "not loaded" in result.output and "could not be loaded" in result.output


def test_without_out_the_file_goes_to_the_inbox_and_is_ingested(demo_layout, tmp_path: Path):
    dump = _copy(demo_layout, tmp_path, *DUMP)
    home = tmp_path / "home"
    result = CliRunner().invoke(cli, ["--home", str(home), "ingest", str(dump)])
    assert result.exit_code == 0, result.output
    assert "danbooru/" + DUMP[1] + ": 450 posts, 2 quarantined" in result.output
    assert (home / "inbox" / "danbooru" / DUMP[1]).is_file()
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        assert instance.get_dynamic_partitions("raw_files") == ["danbooru/" + DUMP[1]]
        (run,) = instance.get_run_records()
        assert run.dagster_run.job_name == "ingest"


def test_a_different_file_of_the_same_name_is_refused(demo_layout, tmp_path: Path):
    home = tmp_path / "home"
    (home / "inbox" / "danbooru").mkdir(parents=True)
    (home / "inbox" / "danbooru" / DUMP[1]).write_text("something else\n")
    dump = _copy(demo_layout, tmp_path, *DUMP)
    result = CliRunner().invoke(cli, ["--home", str(home), "ingest", str(dump)])
    assert result.exit_code == 1
    assert "already holds a different" in result.output


def test_site_must_match_the_file(demo_layout, tmp_path: Path):
    dump = _copy(demo_layout, tmp_path, *DUMP)
    result = CliRunner().invoke(
        cli, ["--home", str(tmp_path / "home"), "ingest", str(dump), "--site", "e621"]
    )
    assert result.exit_code == 1
    assert "not in a format scoretag reads (tried e621_api, e621_csv)" in result.output


def test_unknown_site_is_refused_by_the_option(tmp_path: Path):
    result = CliRunner().invoke(cli, ["ingest", str(tmp_path), "--site", "pixiv"])
    assert result.exit_code == 2 and "pixiv" in result.output
