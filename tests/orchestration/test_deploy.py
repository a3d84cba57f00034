"""Beyond one machine: the k8s profile runs every step in a Kubernetes pod (dagster-k8s), the
GPU steps, and only they, sit in the `gpu` pool and get a GPU pod, and the local profiles keep
Dagster's default executor. Pods are built here with dagster-k8s's own merge and job
construction, as its step handler does; no cluster is needed."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from orchestration import deploy, pools
from orchestration.definitions import build_defs
from orchestration.profile import load_profile
from orchestration.settings import DeploySettings, ProfileError, available_profiles

pytest.importorskip("dagster_k8s", reason="the k8s extra (in dev) is not installed")

from dagster._core.execution.api import create_execution_plan  # noqa: E402
from dagster_k8s.container_context import K8sContainerContext  # noqa: E402
from dagster_k8s.job import (  # noqa: E402
    DagsterK8sJobConfig,
    UserDefinedDagsterK8sConfig,
    construct_dagster_k8s_job,
    get_user_defined_k8s_config,
)
from kubernetes.client import ApiClient  # noqa: E402

GPU_STEPS = {"embeddings", "image_evaluations"}


def _defs(profile: str, home: Path, config: str | None = None) -> dg.Definitions:
    return build_defs(load_profile(profile, home, config))


def _jobs(defs: dg.Definitions) -> list[dg.JobDefinition]:
    return [defs.resolve_job_def(job.name) for job in defs.jobs]


def _ops(defs: dg.Definitions) -> list:
    return [*(a.node_def for a in defs.assets), *(c.node_def for c in defs.asset_checks)]


def _executor_config(job: dg.JobDefinition) -> dict:
    """The executor's config for a run of `job`, validated by Dagster against its schema."""
    (config,) = dg.validate_run_config(job, {})["execution"].values()
    return config


def _step_pod(job: dg.JobDefinition, step_key: str) -> dict:
    """The pod spec the k8s executor would launch for one step of `job` (executor config, then
    the op's tags, then the per-step config, deep-merged by dagster-k8s), as sent to the API."""
    config = _executor_config(job)
    step = create_execution_plan(job).get_step_by_key(step_key)
    layers = [
        UserDefinedDagsterK8sConfig.from_dict(config.get("step_k8s_config", {})),
        get_user_defined_k8s_config(step.tags),
        UserDefinedDagsterK8sConfig.from_dict(config["per_step_k8s_config"].get(step.op_name, {})),
    ]
    context = K8sContainerContext()
    for layer in layers:
        context = context.merge(K8sContainerContext(run_k8s_config=layer))
    job_config = DagsterK8sJobConfig(
        job_image="registry.example.com/scoretag:test",
        dagster_home="/opt/dagster/dagster_home",
        instance_config_map="dagster-instance",
    )
    k8s_job = construct_dagster_k8s_job(
        job_config, ["dagster"], "step", context.run_k8s_config, "step", "step_worker"
    )
    return ApiClient().sanitize_for_serialization(k8s_job.spec.template.spec)


def test_the_k8s_profile_runs_every_job_with_one_pod_per_step(tmp_path: Path):
    defs = _defs("k8s", tmp_path)
    dg.Definitions.validate_loadable(defs)
    jobs = _jobs(defs)
    assert {job.name for job in jobs} >= {"ingest", "embed", "main", "catalog"}
    for job in jobs:
        assert job.executor_def.name == "k8s", job.name
        _executor_config(job)  # the profile's pod settings pass dagster-k8s's schema


def test_production_keeps_dagsters_default_executor(tmp_path: Path):
    for job in _jobs(_defs("production", tmp_path)):
        assert job.executor_def.name == "multi_or_in_process_executor", job.name


def test_the_demo_runs_every_step_in_one_process_and_a_config_may_change_it(tmp_path: Path):
    assert {job.executor_def.name for job in _jobs(_defs("demo", tmp_path))} == {"in_process"}
    override = tmp_path / "multiprocess.toml"
    override.write_text('[deploy]\nexecutor = "multiprocess"\n')
    defs = _defs("demo", tmp_path, str(override))
    assert {job.executor_def.name for job in _jobs(defs)} == {"multi_or_in_process_executor"}


@pytest.mark.parametrize("profile", available_profiles())
def test_the_gpu_pool_and_the_gpu_tags_are_on_exactly_the_gpu_steps(profile: str, tmp_path):
    ops = _ops(_defs(profile, tmp_path))
    in_pool = {op.name for op in ops if op.pool == pools.GPU}
    asking = {op.name for op in ops if pools.GPU_RESOURCE in json.dumps(op.tags)}
    assert in_pool == asking == GPU_STEPS
    for op in ops:
        k8s = {k: json.loads(v) for k, v in op.tags.items() if k.startswith("dagster-k8s")}
        assert k8s == (pools.GPU_OP_TAGS if op.name in GPU_STEPS else {}), op.name
    assert deploy.gpu_ops(_defs(profile, tmp_path)) == sorted(GPU_STEPS)


def test_the_embeddings_step_gets_a_gpu_pod_and_cpu_steps_do_not(tmp_path: Path):
    defs = _defs("k8s", tmp_path)
    settings = load_profile("k8s", tmp_path).settings.deploy
    ingest = defs.resolve_job_def("ingest")
    assert set(_executor_config(ingest)["per_step_k8s_config"]) == GPU_STEPS

    gpu = _step_pod(ingest, "embeddings")
    (container,) = gpu["containers"]
    assert container["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    requests = container["resources"]["requests"]
    assert requests["nvidia.com/gpu"] == "1"
    assert (requests["cpu"], requests["memory"]) == (settings.gpu_step_cpu, "32Gi")
    assert gpu["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    for job, step in [(ingest, "raw_posts"), (defs.resolve_job_def("main"), "scored_catalog")]:
        cpu = _step_pod(job, step)
        assert "nvidia.com/gpu" not in json.dumps(cpu), step
        assert "tolerations" not in cpu and "nodeSelector" not in cpu, step


def test_node_selector_and_requests_reach_the_gpu_pod(tmp_path: Path):
    override = tmp_path / "cluster.toml"
    override.write_text(
        "[deploy]\n"
        'gpu_node_selector = { "cloud.google.com/gke-accelerator" = "nvidia-l4" }\n'
        'gpu_tolerations = [{ key = "gpu", operator = "Equal", value = "l4" }]\n'
        'gpu_step_cpu = "3500m"\n'
        'gpu_step_memory = ""\n'
    )
    embed = _defs("k8s", tmp_path, str(override)).resolve_job_def("embed")
    pod = _step_pod(embed, "embeddings")
    assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert pod["tolerations"] == [
        {"key": "gpu", "operator": "Equal", "value": "l4", "effect": "NoSchedule"}
    ]
    requests = pod["containers"][0]["resources"]["requests"]
    assert requests["cpu"] == "3500m" and "memory" not in requests


def test_without_pod_settings_the_gpu_step_keeps_its_op_tags_alone():
    assert deploy.gpu_step_k8s_config(DeploySettings()) == {}
    executor = deploy.executor_def(DeploySettings(executor="k8s"), ["embeddings"])
    assert executor.name == "k8s"


def test_kubernetes_quantities_are_checked(tmp_path: Path):
    override = tmp_path / "bad.toml"
    override.write_text('[deploy]\ngpu_step_memory = "32 gigabytes"\n')
    with pytest.raises(ProfileError, match="gpu_step_memory"):
        load_profile("k8s", tmp_path, str(override))
