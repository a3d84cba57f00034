"""SIGKILL during a caption export, through `scoretag export`, in the window
tests/captions/test_shards.py leaves out: every shard renamed into place, the manifest not yet
written. Readers (who go by the manifest) see no export; the rerun gives the files of an
uninterrupted export."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from assets.captions.manifest import MANIFEST, VOLATILE
from assets.captions.simpletuner import CONFIG
from scoretag.cli import cli
from tests.reliability.conftest import materialize_catalog
from tests.reliability.driver import kill, reach, start

ARGS = ["--format", "parquet", "--shard-size", "100"]


def _export(home: Path, out: Path) -> None:
    result = CliRunner().invoke(cli, ["--home", str(home), "export", *ARGS, "--out", str(out)])
    assert result.exit_code == 0, result.output


def _files(out: Path) -> dict[str, bytes]:
    # but the manifest, and SimpleTuner's config, written after it (it names the folder)
    return {p.name: p.read_bytes() for p in out.iterdir() if p.name not in (MANIFEST, CONFIG)}


def _manifest(out: Path) -> dict:
    manifest = json.loads((out / MANIFEST).read_text())
    del manifest["incremental"]["shape"]["command"]  # the command names the folder
    return {k: v for k, v in manifest.items() if k not in (*VOLATILE, "command")}


def test_a_killed_export_shows_no_export_and_the_rerun_equals_an_uninterrupted_one(
    catalog_home, tmp_path
):
    home = catalog_home.home
    assert materialize_catalog(home).success
    uninterrupted, killed = tmp_path / "uninterrupted", tmp_path / "killed"
    _export(home, uninterrupted)  # also calibrates the head, as the killed one would
    assert len(_files(uninterrupted)) >= 3  # shards

    process = start("export", str(home), str(tmp_path / "never"), *ARGS, "--out", str(killed))
    try:
        reach(process, "manifest")
    finally:
        kill(process)
    assert set(_files(killed)) == set(_files(uninterrupted))  # killed in the window: shards in
    assert not (killed / MANIFEST).exists()  # place, but a reader finds no export, no part of one

    _export(home, killed)
    assert _files(killed) == _files(uninterrupted)
    assert _manifest(killed) == _manifest(uninterrupted)
    config = (uninterrupted / CONFIG).read_text().replace("uninterrupted", "killed")
    assert (killed / CONFIG).read_text() == config


def _shards(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in out.iterdir() if p.name.startswith("shard-")}


def _retag(catalog: Path, site: str, post_id: int) -> None:
    """A refresh that changes one post's tags, through the catalog writer."""
    import polars as pl

    from assets.catalog.writer import apply_post_changes, open_catalog

    with open_catalog(catalog) as con:
        row = con.execute(
            "SELECT * EXCLUDE (added_seq, changed_seq) FROM posts WHERE site = ? AND post_id = ?",
            [site, post_id],
        ).pl()
        assert row.height == 1
        apply_post_changes(con, row.with_columns(tags=pl.lit(["a_tag_added_later"])))


def test_a_killed_incremental_export_leaves_the_previous_one_whole(catalog_home, tmp_path):
    import polars as pl

    from assets.captions.formats import read_rows
    from assets.captions.manifest import verify

    home = catalog_home.home
    assert materialize_catalog(home).success
    out = tmp_path / "out"
    _export(home, out)
    manifest_bytes = (out / MANIFEST).read_bytes()
    before = _shards(out)
    stats = {name: (out / name).stat().st_mtime_ns for name in before}
    listed = json.loads(manifest_bytes)["shards"]
    middle = read_rows("parquet", out / listed[1]["name"]).row(3, named=True)
    _retag(catalog_home.catalog, middle["site"], middle["post_id"])

    process = start("export", str(home), str(tmp_path / "never"), *ARGS, "--out", str(out))
    try:
        reach(process, "manifest")
    finally:
        kill(process)
    # the previous export, whole: its manifest, and every shard it lists, untouched
    assert (out / MANIFEST).read_bytes() == manifest_bytes
    assert verify(out, json.loads(manifest_bytes)) == []
    assert {n: (out / n).stat().st_mtime_ns for n in before} == stats
    assert set(_shards(out)) - set(before)  # the killed one had staged its rebuilt shard

    _export(home, out)
    manifest = json.loads((out / MANIFEST).read_text())
    assert (
        manifest["incremental"]["change_seq"]
        > json.loads(manifest_bytes)["incremental"]["change_seq"]
    )
    assert set(_shards(out)) == {s["name"] for s in manifest["shards"]}  # the stray one went
    changed = [s["name"] for s in manifest["shards"] if s["name"] not in before]
    assert len(changed) == 1 and changed[0].startswith("shard-00001-")
    fresh = tmp_path / "fresh"
    _export(home, fresh)

    def rows(folder: Path) -> pl.DataFrame:
        listed = json.loads((folder / MANIFEST).read_text())["shards"]
        return pl.concat([read_rows("parquet", folder / s["name"]) for s in listed])

    assert rows(out).equals(rows(fresh))
    assert (
        "a tag added later"
        in rows(out).filter(
            (pl.col("site") == middle["site"]) & (pl.col("post_id") == middle["post_id"])
        )["caption"][0]
    )
