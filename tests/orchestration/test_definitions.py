import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from orchestration.definitions import build_defs
from orchestration.jobs import MAIN_JOB
from orchestration.profile import load_profile

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("profile", ["demo", "production", "k8s"])
def test_definitions_load_for_every_profile(profile: str, tmp_path: Path):
    defs = build_defs(load_profile(profile, tmp_path))
    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_job_def(MAIN_JOB) is not None
    scoretag = defs.resources["scoretag"]
    assert scoretag.profile == profile and scoretag.home == str(tmp_path)
    assert scoretag.load().layout.home == tmp_path


def test_module_exposes_one_definitions_for_the_active_profile():
    import orchestration.definitions as module

    found = [v for v in vars(module).values() if isinstance(v, dg.Definitions)]
    assert found == [module.defs]


def test_dagster_validates_the_workspace(tmp_path: Path):
    env = {
        "PATH": str(Path(sys.executable).parent),
        "HOME": str(tmp_path),
        "SCORETAG_HOME": str(tmp_path / "root"),
        "DAGSTER_HOME": str(tmp_path),
    }
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "definitions",
            "validate",
            "-w",
            "workspace.yaml",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "All code locations passed validation" in result.stderr + result.stdout


def test_every_asset_reads_well_in_the_graph(tmp_path: Path):
    """Groups in the lineage's order, and a description, owner, kind and code version on
    every asset, so the UI's graph and catalog explain themselves."""
    defs = build_defs(load_profile("demo", tmp_path))
    groups = {}
    for assets_def in defs.resolve_asset_graph().assets_defs:
        for spec in assets_def.specs:
            name = spec.key.to_user_string()
            groups[name] = spec.group_name
            assert spec.description and spec.owners and spec.kinds, name
            assert spec.code_version, name
    assert set(groups.values()) == {
        "ingest",
        "labeling",
        "model",
        "catalog",
        "export",
        "evaluation",
    }
    assert groups["embeddings"] == groups["aesthetic_head"] == "model"
    assert groups["caption_shards"] == "export"
    assert groups["image_evaluations"] == "evaluation"
