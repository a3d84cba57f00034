import os
from pathlib import Path

import dagster as dg
import yaml

from orchestration.profile import activate, load_profile, set_pool_limits, write_dagster_yaml


def test_dagster_yaml_turns_telemetry_off_and_limits_pools(tmp_path: Path):
    profile = load_profile("demo", tmp_path)
    config = yaml.safe_load(write_dagster_yaml(profile).read_text())
    assert config["telemetry"] == {"enabled": False}
    assert config["concurrency"]["pools"]["default_limit"] == 1
    assert config["run_monitoring"]["enabled"] is True
    assert config["run_monitoring"]["free_slots_after_run_end_seconds"] > 0
    assert config["storage"]["sqlite"]["base_dir"].startswith(str(tmp_path))


def test_activate_points_dagster_at_the_profile(tmp_path: Path):
    profile = load_profile("demo", tmp_path / "root")
    activate(profile)
    assert os.environ["DAGSTER_HOME"] == str(tmp_path / "root" / "dagster")
    assert os.environ["SCORETAG_HOME"] == str(tmp_path / "root")
    assert (tmp_path / "root" / "dagster" / "dagster.yaml").is_file()
    assert (tmp_path / "root" / "inbox" / "gelbooru").is_dir()


def test_instance_loads_the_template_and_holds_pool_limits(tmp_path: Path):
    profile = load_profile("demo", tmp_path)
    activate(profile)
    assert set_pool_limits(profile) == {"gpu": 1, "duckdb": 1, "network": 1}
    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        assert storage.get_concurrency_info("gpu").slot_count == 1
        assert storage.get_concurrency_info("duckdb").slot_count == 1
        assert instance.run_monitoring_enabled


def test_gpu_slots_follow_the_profile(tmp_path: Path):
    config = tmp_path / "gpus.toml"
    config.write_text("gpu_slots = 4\n")
    profile = load_profile("production", tmp_path / "root", config)
    activate(profile)
    assert set_pool_limits(profile)["gpu"] == 4
    with dg.DagsterInstance.get() as instance:
        assert instance.event_log_storage.get_concurrency_info("gpu").slot_count == 4
