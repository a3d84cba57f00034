"""How runs execute: the executor a profile's [deploy] table names and, on Kubernetes, what the
pods of GPU steps ask for.

With `executor = "k8s"` every step of a run is a Kubernetes Job of its own (dagster-k8s's
k8s_job_executor), so each partition of `embeddings` runs in a GPU pod while the CPU steps run
in plain ones, and the instance's `gpu` pool (its limit: the number of GPUs) decides how many
GPU pods run at once across all runs. See deploy/README.md.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from orchestration import pools
from orchestration.settings import DeploySettings, Toleration


def gpu_ops(defs: dg.Definitions) -> list[str]:
    """The ops (of assets and of checks) in the `gpu` pool: the steps that need a GPU."""
    nodes = [*(a.node_def for a in defs.assets or []), *(c.node_def for c in defs.asset_checks)]
    return sorted({node.name for node in nodes if getattr(node, "pool", None) == pools.GPU})


def _toleration(toleration: Toleration) -> dict[str, str]:
    # Kubernetes reads an empty value or effect as "any", the same as leaving it out.
    return {k: v for k, v in toleration.model_dump().items() if v}


def gpu_step_k8s_config(settings: DeploySettings) -> dict[str, Any]:
    """dagster-k8s config deep-merged into each GPU step's pod after its op tags: where it may
    be scheduled (node selector, tolerations) and the CPU and memory it asks for beside the
    GPU. Empty when the profile sets none of these."""
    config: dict[str, Any] = {}
    pod_spec: dict[str, Any] = {}
    if settings.gpu_node_selector:
        pod_spec["node_selector"] = dict(settings.gpu_node_selector)
    if settings.gpu_tolerations:
        pod_spec["tolerations"] = [_toleration(t) for t in settings.gpu_tolerations]
    if pod_spec:
        config["pod_spec_config"] = pod_spec
    requests = {"cpu": settings.gpu_step_cpu, "memory": settings.gpu_step_memory}
    if any(requests.values()):
        requests = {k: v for k, v in requests.items() if v}
        config["container_config"] = {"resources": {"requests": requests}}
    return config


def executor_def(settings: DeploySettings, gpu_steps: list[str]) -> dg.ExecutorDefinition | None:
    """The profile's executor; None leaves Dagster's default (multiprocess, or in-process when
    a run's config asks)."""
    if settings.executor == "in_process":
        return dg.in_process_executor
    if settings.executor == "multiprocess":
        return None
    from dagster_k8s import k8s_job_executor  # the `k8s` extra: only this profile needs it

    step = gpu_step_k8s_config(settings)
    return k8s_job_executor.configured(
        {"per_step_k8s_config": {op: step for op in gpu_steps}} if step else {},
        name="k8s",
    )


def deploy_defs(settings: DeploySettings, stages: dg.Definitions) -> dg.Definitions:
    """The executor every job of the code location runs with."""
    return dg.Definitions(executor=executor_def(settings, gpu_ops(stages)))
