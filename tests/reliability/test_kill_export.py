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
