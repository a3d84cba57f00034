"""Two runs at once (a scheduled run beside a manual one) never corrupt the catalog: on one
Dagster instance the `duckdb` pool runs their catalog steps one at a time; across instances
(or beside `scoretag query`) the second waits for DuckDB's lock, or fails naming the file and
the process that holds it."""

from __future__ import annotations

import inspect
import time
from pathlib import Path

import dagster as dg
from click.testing import CliRunner

from orchestration import pools
from orchestration.definitions import build_defs
from orchestration.profile import activate, load_profile, set_pool_limits
from orchestration.runner import RunOutcome, collect
from scoretag.cli import cli
from tests.reliability.conftest import catalog_scores, materialize_catalog
from tests.reliability.driver import kill, reach, release_later, start

HOLD_S = 2.0  # how long the first run keeps the catalog once the second has started


def _config(tmp_path: Path, timeout_s: float) -> Path:
    path = tmp_path / f"wait-{timeout_s}.toml"
    path.write_text(f"[catalog]\nlock_timeout_s = {timeout_s}\n")
    return path


def _assert_scored_once(catalog: Path) -> None:
    scores = catalog_scores(catalog)
    assert scores.height > 1000
    assert not scores.select("post_key", "head_version").is_duplicated().any()


def _failures(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> list[str]:
    return collect(instance, [result.run_id], RunOutcome()).failures


def test_a_second_writer_waits_for_the_first_or_fails_naming_it(catalog_home, tmp_path):
    catalog, home, release = catalog_home.catalog, catalog_home.home, tmp_path / "release"
    first = start("score", str(home), "scores_written", str(release))
    try:
        reach(first, "scores_written")
        holder = f"the catalog {catalog} is open in process {first.pid}: another run is writing it"
        with dg.DagsterInstance.ephemeral() as instance:
            impatient = materialize_catalog(home, _config(tmp_path, 0.5), instance)
            failures = _failures(instance, impatient)
        assert not impatient.success
        assert len(failures) == 1 and holder in failures[0], failures
        assert "waited 0.5 s" in failures[0] and "lock_timeout_s" in failures[0]

        query = CliRunner().invoke(
            cli,
            ["--home", str(home), "--config", str(_config(tmp_path, 0.5))]
            + ["query", "--sql", "SELECT 1"],
        )
        assert query.exit_code == 1
        assert f"the catalog {catalog} is being written by process {first.pid}" in query.output
        assert "Traceback" not in query.output

        started = time.monotonic()
        release_later(release, HOLD_S)
        with dg.DagsterInstance.ephemeral() as instance:
            patient = materialize_catalog(home, instance=instance)  # the default: 300 s
            logs = [record.user_message for record in instance.all_logs(patient.run_id)]
        waited = time.monotonic() - started
        assert first.wait(timeout=120) == 0  # the first run finished, undisturbed
    finally:
        kill(first)
    assert patient.success and waited >= HOLD_S
    assert any(holder in m and "waiting up to 300 s" in m for m in logs)
    (second,) = patient.asset_materializations_for_node("scored_catalog")
    assert second.metadata["scored_this_run"].value == 0  # the first had scored them all
    assert all(e.passed for e in patient.get_asset_check_evaluations())
    _assert_scored_once(catalog)


def test_on_one_instance_the_duckdb_pool_runs_catalog_steps_one_at_a_time(catalog_home, tmp_path):
    # Both runs on the profile's instance, as the daemon's and `scoretag run`'s are. The
    # second is told not to wait for DuckDB's lock at all: only the pool can keep it out.
    profile = load_profile("demo", catalog_home.home)
    activate(profile)
    assert set_pool_limits(profile)[pools.DUCKDB] == 1
    release = tmp_path / "release"
    first = start("score", str(catalog_home.home), "scores_written", str(release))
    try:
        reach(first, "scores_written")
        started = time.monotonic()
        release_later(release, HOLD_S)
        with dg.DagsterInstance.get() as instance:
            second = materialize_catalog(catalog_home.home, _config(tmp_path, 0), instance)
            failures = _failures(instance, second)
        waited = time.monotonic() - started
        assert first.wait(timeout=120) == 0
    finally:
        kill(first)
    assert second.success, failures
    assert waited >= HOLD_S
    _assert_scored_once(catalog_home.catalog)


def test_every_step_that_opens_the_catalog_is_in_the_duckdb_pool(tmp_path):
    """Found in the definitions: each asset or check whose code opens the catalog file.
    (tests/orchestration/test_profile.py shows the instance gives that pool one slot.)"""
    defs = build_defs(load_profile("demo", tmp_path))
    ops = {
        op.name: op
        for job in defs.resolve_all_job_defs()  # asset steps, checks and plain ops alike
        for op in job.all_node_defs
        if isinstance(op, dg.OpDefinition)
    }
    opening = {
        name: op.pool
        for name, op in ops.items()
        if "layout.catalog" in inspect.getsource(op.compute_fn.decorated_fn)
    }
    assert {"scored_catalog", "scored_catalog_scored_catalog_suite", "caption_shards"} <= set(
        opening
    ), sorted(ops)
    assert {name: pools.DUCKDB for name in opening} == opening
