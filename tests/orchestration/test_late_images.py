"""Images that arrive after their raw file was embedded are embedded by the next scheduled
path, with nothing ingested again: the `images` job (what `daily_images` runs) refreshes the
index, and the late-images sensor then asks an `embed` run for each raw file concerned."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
from click.testing import CliRunner

from orchestration.profile import load_profile
from orchestration.resources import ScoretagResource
from orchestration.sensors import late_images_sensor
from scoretag.cli import cli

SMALL = "[demo]\nimages = 60\nposts = 200\n"


def _invoke(args: list[str]) -> str:
    """The command's output; the demo's deliberately broken raw files fail their ingest
    runs (exit 1), nothing else may fail."""
    result = CliRunner().invoke(cli, args)
    assert result.exit_code in (0, 1), result.output
    failed = [line for line in result.output.splitlines() if line.startswith("failed ")]
    assert all(line.startswith("failed raw_posts:") for line in failed), result.output
    return result.output


def _tick(home: Path, config: Path, cursor: str | None):
    profile = load_profile("demo", home, config)
    resources = {"scoretag": ScoretagResource.for_profile(profile)}
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
        result = late_images_sensor(context)
        return result, getattr(result, "cursor", None) or cursor


def _requested(result) -> list[str]:
    return sorted(r.partition_key for r in getattr(result, "run_requests", None) or [])


def test_images_found_later_are_embedded_by_the_sensor_not_reingested(tmp_path):
    config = tmp_path / "small.toml"
    config.write_text(SMALL)
    home = tmp_path / "home"
    base = ["--profile", "demo", "--home", str(home), "--config", str(config)]
    _invoke([*base, "demo", "build", "--workers", "2"])
    images = home / "images"
    held = tmp_path / "held"
    held.mkdir()
    late = sorted(p for p in images.iterdir() if p.is_file())[:6]
    for path in late:
        shutil.move(path, held / path.name)
    _invoke([*base, "run", "--job", "ingest"])  # ingested and embedded without those six

    result, cursor = _tick(home, config, None)
    assert _requested(result) == []  # no index refresh yet: nothing to act on

    for path in held.iterdir():
        shutil.move(path, images / path.name)  # the six arrive
    _invoke([*base, "run", "--job", "images", "--no-ingest"])  # what daily_images runs
    result, cursor = _tick(home, config, cursor)
    owed = _requested(result)
    assert owed, "a raw file whose images arrived must be embedded again"
    assert {r.run_key.rsplit("@", 1)[1] for r in result.run_requests} == {cursor}
    again, _ = _tick(home, config, cursor)
    assert _requested(again) == []  # asked once per refresh

    _invoke([*base, "run", "--job", "embed"])  # the runs the sensor asked for
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        runs = [r.dagster_run for r in instance.get_run_records()]
    assert sorted(r.tags["dagster/partition"] for r in runs if r.job_name == "embed") == owed
    assert {r.job_name for r in runs} == {"ingest", "images", "embed"}
    result, _ = _tick(home, config, cursor)
    assert _requested(result) == []  # after the next refresh, nothing is owed
