"""`scoretag info`."""

from __future__ import annotations

import click
from rich.markup import escape

from orchestration.storage import SITES
from scoretag.cli.common import console, current_profile


def _inbox_line(path) -> str:
    files = sum(1 for p in path.glob("*") if p.is_file()) if path.is_dir() else 0
    return f"{path}  ({files} files)"


def _gpu_rows(profile) -> dict[str, str]:
    """The CUDA devices this process sees, and what is wrong with gpu_slots on them."""
    from orchestration.devices import cuda_devices, slot_warning

    settings = profile.settings
    gpus = cuda_devices()
    rows = {"gpus": "; ".join(g.describe() for g in gpus) if gpus else "none (CUDA not available)"}
    warning = slot_warning(
        settings.gpu_slots, settings.backbone.device, len(gpus), settings.deploy.executor
    )
    if warning:
        rows["warning"] = warning
    return rows


def _weights_rows(backbone) -> dict[str, str]:
    """Which weights the backbone loads (a declared local copy with its sha256, the Hugging
    Face cache, a download) and the identity its embeddings are filed under."""
    from orchestration.backbone import identity
    from orchestration.weights import describe_source

    rows = {
        "weights": describe_source(
            backbone.model, backbone.pretrained, backbone.checkpoint, backbone.seed
        )
    }
    try:
        found = identity(backbone)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        rows["backbone id"] = f"none: {e}"
    else:
        rows["backbone id"] = f"{found.id} ({found.activation_name})"
    return rows


@click.command()
def info() -> None:
    """Show the active profile, its settings and where its data is."""
    profile = current_profile()
    layout, backbone = profile.layout, profile.settings.backbone
    weights = backbone.checkpoint or backbone.pretrained or "random init (untrained)"
    rows = {
        "profile": f"{profile.name}: {profile.settings.description}",
        "storage root": layout.home,
        "dagster home": layout.dagster_home,
        **{f"inbox/{site}": _inbox_line(layout.site_inbox(site)) for site in SITES},
        "image root": layout.images,
        "stage data": layout.data,
        "object root": layout.object_root or "none: everything under the storage root",
        "catalog": layout.catalog,
        "label store": layout.label_store,
        "backbone": f"{backbone.model} ({weights}), {backbone.device}, {backbone.precision}, "
        f"batch {backbone.batch_size}",
        **_weights_rows(backbone),
        "pools": ", ".join(f"{k}={v}" for k, v in profile.pool_limits.items()),
        "executor": profile.settings.deploy.executor,
        **_gpu_rows(profile),
    }
    for label, value in rows.items():
        # soft_wrap: paths are copied from the terminal, so they are never broken by a newline
        console.print(escape(f"{label:<18} {value}"), soft_wrap=True)
