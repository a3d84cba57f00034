"""deploy/: the files a Kubernetes deployment needs parse, agree with the project (module,
profile, extras, environment variables) and, for the instance, pass Dagster's own schemas.
The Helm values cannot be rendered here (no helm, no chart offline): their keys are checked
against what the chart's templates read."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

from orchestration.settings import available_profiles

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
MODULE = PYPROJECT["tool"]["dagster"]["module_name"]
INSTANCE_ENV = {
    "DAGSTER_PG_HOST": "postgres",
    "DAGSTER_PG_PORT": "5432",
    "DAGSTER_PG_DB": "dagster",
    "DAGSTER_PG_USERNAME": "dagster",
    "DAGSTER_PG_PASSWORD": "secret",
    "DAGSTER_INSTANCE_CONFIG_MAP": "dagster-instance",
    "DAGSTER_K8S_NAMESPACE": "scoretag",
}


def _yaml(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


def test_every_yaml_file_parses():
    files = sorted(DEPLOY.rglob("*.yaml"))
    assert {f.relative_to(DEPLOY).as_posix() for f in files} >= {"dagster.yaml", "helm/values.yaml"}
    for path in files:
        assert isinstance(yaml.safe_load(path.read_text()), dict), path


def test_the_instance_yaml_passes_dagsters_schemas(tmp_path: Path, monkeypatch):
    pytest.importorskip("dagster_k8s", reason="the k8s extra (in dev) is not installed")
    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config
    from dagster_k8s import K8sRunLauncher
    from dagster_postgres import DagsterPostgresStorage

    for name, value in INSTANCE_ENV.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "dagster.yaml").write_text((DEPLOY / "dagster.yaml").read_text())
    config, _ = dagster_instance_config(str(tmp_path))  # also checks concurrency vs the queue
    sections = [
        (K8sRunLauncher, config["run_launcher"]["config"]),
        (DagsterPostgresStorage, config["storage"]["postgres"]),
    ]
    for cls, raw in sections:
        result = process_config(cls.config_type(), raw)
        assert result.success, (cls.__name__, [e.message for e in result.errors or []])
    assert config["run_launcher"]["class"] == "K8sRunLauncher"
    assert config["concurrency"]["pools"]["default_limit"] == 1  # duckdb: one writer
    env = dict(v.split("=", 1) for v in config["run_launcher"]["config"]["env_vars"] if "=" in v)
    assert env["SCORETAG_PROFILE"] in available_profiles()


def _user_deployment(values: dict) -> dict:
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    return deployment


def test_the_helm_values_load_this_code_location_with_the_k8s_profile():
    values = _yaml("helm/values.yaml")
    deployment = _user_deployment(values)
    assert values["dagster-user-deployments"]["enabled"] is True
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", MODULE]
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True
    env = deployment["env"]
    assert env["SCORETAG_PROFILE"] in available_profiles()
    mounts = {m["mountPath"] for m in deployment["volumeMounts"]}
    assert env["SCORETAG_HOME"] in mounts  # the storage root is the shared volume
    claims = {v["persistentVolumeClaim"]["claimName"] for v in deployment["volumes"]}
    assert claims == {m["name"] for m in deployment["volumeMounts"]}
    assert re.match(r"^(s3|gs)://", env["SCORETAG_OBJECT_ROOT"])


def test_the_helm_values_keep_the_pools_and_the_run_queue_consistent():
    values = _yaml("helm/values.yaml")
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["postgresql"]["enabled"] is False and values["postgresql"]["postgresqlHost"]
    concurrency = values["concurrency"]
    assert concurrency["enabled"] is True
    assert concurrency["pools"]["defaultLimit"] == 1  # duckdb: one writer
    assert concurrency["pools"]["granularity"] == "op"  # the gpu pool counts steps, not runs
    queue = values["dagsterDaemon"]["runCoordinator"].get("config", {})
    # The chart refuses a run limit set both here and in the queued run coordinator.
    assert "maxConcurrentRuns" not in queue.get("queuedRunCoordinator", {})
    assert values["dagsterDaemon"]["runMonitoring"]["freeSlotsAfterRunEndSeconds"] > 0


def test_the_dockerfile_installs_extras_that_exist_and_serves_this_module():
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    extras = re.search(r"^ARG EXTRAS=(\S+)$", text, re.M).group(1).split(",")
    assert "k8s" in extras
    optional = PYPROJECT["project"]["optional-dependencies"]
    assert set(extras) <= set(optional)
    assert {"s3", "gcs"} <= set(optional)  # the Dockerfile names both
    assert f'"--module-name", "{MODULE}"' in text
    profile = re.search(r"SCORETAG_PROFILE=(\S+)", text).group(1)
    assert profile in available_profiles()
    # Every installed top-level package is copied in, or the image lacks its code.
    packages = {
        p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    copied = set(re.findall(r"^COPY (\w+) \./\1$", text, re.M))
    assert packages == copied, packages ^ copied


def test_the_deploy_readme_lists_every_variable_the_code_reads():
    code = "\n".join(
        p.read_text()
        for d in ("orchestration", "assets", "scoretag")
        for p in (ROOT / d).rglob("*.py")
    )
    read = set(re.findall(r"\"(SCORETAG_[A-Z_]+)\"", code))
    assert {"SCORETAG_PROFILE", "SCORETAG_HOME", "SCORETAG_OBJECT_ROOT"} <= read
    readme = (DEPLOY / "README.md").read_text()
    listed = set(re.findall(r"^\| `(SCORETAG_[A-Z_]+)`", readme, re.M))
    assert read <= listed, read - listed
    values_env = set(_user_deployment(_yaml("helm/values.yaml"))["env"])
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", readme))
    assert values_env <= documented, values_env - documented
