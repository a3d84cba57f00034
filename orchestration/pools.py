"""Concurrency pools shared by every stage (their limits are set on the instance by
profile.set_pool_limits and kept there by the pool_limits sensor)."""

GPU = "gpu"
"""Steps that need a GPU: at most `gpu_slots` run at once across all runs."""

DUCKDB = "duckdb"
"""Every writer of the catalog: DuckDB allows one writing process."""

NETWORK = "network"
"""Steps that download from the sites (image_files): one at a time, so that the per-site rate
limits of `[images]` hold across runs (each step has its own concurrent connections)."""

GPU_RESOURCE = "nvidia.com/gpu"
# A GPU step's op tags: on Kubernetes its pod asks for one GPU (the embedder uses one device),
# and the scheduler puts it on a node that has one free. Elsewhere the tag is inert.
GPU_OP_TAGS = {
    "dagster-k8s/config": {
        "container_config": {
            "resources": {"requests": {GPU_RESOURCE: "1"}, "limits": {GPU_RESOURCE: "1"}}
        }
    }
}
