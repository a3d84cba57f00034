"""The pool limits sensor keeps a deployed instance's pools at the profile's limits."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from orchestration.definitions import defs
from orchestration.pools import DUCKDB, GPU
from orchestration.profile import load_profile
from orchestration.resources import ScoretagResource
from orchestration.sensors import pool_limits_sensor


def _slots(instance: dg.DagsterInstance, pool: str) -> int:
    return instance.event_log_storage.get_concurrency_info(pool).slot_count


def test_the_sensor_sets_the_pools_once_then_leaves_them(tmp_path: Path):
    config = tmp_path / "gpus.toml"
    config.write_text("gpu_slots = 3\n")
    profile = load_profile("demo", tmp_path / "home", config)
    resources = {"scoretag": ScoretagResource.for_profile(profile, str(config))}
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        instance.event_log_storage.set_concurrency_slots(GPU, 1)
        context = dg.build_sensor_context(instance=instance, resources=resources)
        first = pool_limits_sensor(context)
        assert (_slots(instance, GPU), _slots(instance, DUCKDB)) == (3, 1)
        assert first.skip_message == "pool limits set at gpu=3, duckdb=1, network=1"
        again = pool_limits_sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert again.skip_message == "pool limits already at gpu=3, duckdb=1, network=1"


def test_the_shipped_definitions_run_it_by_default():
    (sensor,) = [s for s in defs.sensors if s.name == "pool_limits_sensor"]
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
