"""Automation: a new raw file flows on by itself to its embeddings, normalized_scores and the
catalog's scores; the daily schedules ingest the inbox and run the incremental path."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

import dagster as dg

from orchestration.definitions import build_defs
from orchestration.profile import load_profile
from orchestration.resources import ScoretagResource
from orchestration.settings import ScheduleSettings

WATCHED = ("embeddings", "normalized_scores", "scored_catalog", "aesthetic_head", "rating_pool")


def _requested(result, name: str) -> set:
    key = dg.AssetKey(name)
    return set(result.get_requested_partitions(key)) if result.get_num_requested(key) else set()


def test_a_new_partition_flows_to_its_embeddings_and_the_catalog(tmp_path):
    defs = build_defs(load_profile("demo", tmp_path))
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("raw_files", ["danbooru/a.json", "e621/b.csv"])
        first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        assert first.total_requested == 0  # nothing new yet
        instance.report_runless_asset_event(
            dg.AssetMaterialization("raw_posts", partition="danbooru/a.json")
        )
        after = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
        requested = {name: _requested(after, name) for name in WATCHED}
        assert requested == {
            "embeddings": {"danbooru/a.json"},  # only the new file's images
            "normalized_scores": {None},
            "scored_catalog": {None},
            "aesthetic_head": set(),  # training stays a deliberate act
            "rating_pool": set(),
        }
        again = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=after.cursor)
        assert again.total_requested == 0  # requested once, not on every tick


def test_the_automation_sensor_and_the_schedules_are_on_by_default(tmp_path):
    defs = build_defs(load_profile("demo", tmp_path))
    sensor = defs.resolve_sensor_def("scoretag_automation")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    for name in ("daily_ingest", "daily_images", "daily_rescore"):
        schedule = defs.resolve_schedule_def(name)
        assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert defs.resolve_schedule_def("daily_ingest").cron_schedule == "0 4 * * *"
    assert defs.resolve_schedule_def("daily_rescore").cron_schedule == "0 5 * * *"
    assert defs.resolve_schedule_def("daily_rescore").job_name == "catalog"
    assert defs.resolve_schedule_def("daily_images").cron_schedule == "30 4 * * *"
    assert defs.resolve_schedule_def("daily_images").job_name == "images"
    sensor = defs.resolve_sensor_def("late_images_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING and sensor.job_name == "embed"


def test_the_schedule_time_is_configurable(tmp_path):
    config = tmp_path / "late.toml"
    config.write_text(
        '[schedule]\ndaily_at = "23:30"\nimages_after_minutes = 20\nrescore_after_minutes = 45\n'
    )
    defs = build_defs(load_profile("demo", tmp_path, config))
    assert defs.resolve_schedule_def("daily_ingest").cron_schedule == "30 23 * * *"
    assert defs.resolve_schedule_def("daily_rescore").cron_schedule == "15 0 * * *"
    assert defs.resolve_schedule_def("daily_images").cron_schedule == "50 23 * * *"
    assert ScheduleSettings(daily_at="07:05").cron() == "5 7 * * *"


def test_daily_ingest_requests_one_run_per_new_inbox_file(tmp_path, demo_layout):
    profile = load_profile("demo", tmp_path)
    defs = build_defs(profile)
    schedule = defs.resolve_schedule_def("daily_ingest")
    resources = {"scoretag": ScoretagResource.for_profile(profile)}
    tick = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)
    with dg.instance_for_test() as instance:  # a schedule context needs an instance ref
        with dg.build_schedule_context(
            instance=instance, scheduled_execution_time=tick, resources=resources
        ) as context:
            skipped = schedule(context)
        assert isinstance(skipped, dg.SkipReason) and "nothing new" in skipped.skip_message
        target = tmp_path / "inbox" / "gelbooru"
        target.mkdir(parents=True, exist_ok=True)
        source = demo_layout.inbox / "gelbooru" / "index-2017-06-03.xml"
        shutil.copy(source, target / source.name)
        with dg.build_schedule_context(
            instance=instance, scheduled_execution_time=tick, resources=resources
        ) as context:
            requests = schedule(context)
        assert [r.partition_key for r in requests] == ["gelbooru/index-2017-06-03.xml"]
        assert "gelbooru/index-2017-06-03.xml" in instance.get_dynamic_partitions("raw_files")
