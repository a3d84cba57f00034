"""`scoretag demo run` end to end, as `make demo` runs it, on a fresh storage root."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from click.testing import CliRunner

from orchestration.cli import cli


def test_demo_run_builds_data_runs_the_main_job_and_summarizes(tmp_path: Path):
    result = CliRunner().invoke(cli, ["--profile", "demo", "--home", str(tmp_path), "demo", "run"])
    assert result.exit_code == 0, result.output
    for expected in (
        "Demo data (seed 0",
        "danbooru_dump",
        "600 images",
        "succeeded",
        "randomly initialised (untrained)",
        "make ui",
        str(tmp_path / "inbox"),
    ):
        assert expected in result.output
    assert (tmp_path / "dagster" / "dagster.yaml").is_file()
    assert len(list((tmp_path / "images").iterdir())) == 600
    with dg.DagsterInstance.from_config(str(tmp_path / "dagster")) as instance:
        (run,) = instance.get_run_records()
        assert run.dagster_run.job_name == "main"
        assert run.dagster_run.status == dg.DagsterRunStatus.SUCCESS
