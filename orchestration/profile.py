"""The active profile: its settings, its storage layout and its Dagster instance."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from string import Template

from orchestration import pools
from orchestration.settings import Settings, load_settings
from orchestration.storage import Layout, layout_for

DAGSTER_YAML_TEMPLATE = Path(__file__).parent / "dagster.yaml.template"


@dataclass(frozen=True)
class Profile:
    settings: Settings
    layout: Layout
    config: str = ""  # the override file its settings were read with, if any

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def pool_limits(self) -> dict[str, int]:
        return {pools.GPU: self.settings.gpu_slots, pools.DUCKDB: 1, pools.NETWORK: 1}


def load_profile(
    profile: str | None = None,
    home: str | Path | None = None,
    config: str | Path | None = None,
    object_root: str | None = None,
) -> Profile:
    config = config or os.environ.get("SCORETAG_CONFIG") or ""
    config = str(Path(config).resolve()) if config else ""
    settings = load_settings(profile, config or None)
    layout = layout_for(settings, home, object_root)
    return Profile(settings=settings, layout=layout, config=config)


def render_dagster_yaml(profile: Profile) -> str:
    template = Template(DAGSTER_YAML_TEMPLATE.read_text())
    return template.substitute(profile=profile.name, dagster_home=profile.layout.dagster_home)


def write_dagster_yaml(profile: Profile) -> Path:
    """Write `dagster.yaml` into the profile's Dagster home, only when its text changed."""
    path = profile.layout.dagster_home / "dagster.yaml"
    text = render_dagster_yaml(profile)
    if not path.is_file() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return path


def activate(profile: Profile) -> None:
    """Make this profile the one every Dagster process started from here sees.

    Exported through the environment so `dagster dev`, its code server and its run workers
    load the same profile and storage root as the command that started them.
    """
    profile.layout.ensure()
    write_dagster_yaml(profile)
    os.environ["SCORETAG_PROFILE"] = profile.name
    os.environ["SCORETAG_HOME"] = str(profile.layout.home)
    os.environ["DAGSTER_HOME"] = str(profile.layout.dagster_home)
    if profile.layout.object_root:
        os.environ["SCORETAG_OBJECT_ROOT"] = profile.layout.object_root
    if profile.config:
        os.environ["SCORETAG_CONFIG"] = profile.config


def set_pool_limits(profile: Profile) -> dict[str, int]:
    """Store the profile's pool limits in its instance (visible under Deployment → Concurrency)."""
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(profile.layout.dagster_home)) as instance:
        apply_pool_limits(instance, profile.pool_limits)
    return profile.pool_limits


def apply_pool_limits(instance, limits: dict[str, int]) -> dict[str, tuple[int, int]]:
    """Give each pool of `instance` its limit; returns the pools changed, with (was, now)."""
    storage = instance.event_log_storage
    changed = {}
    for pool, limit in limits.items():
        was = storage.get_concurrency_info(pool).slot_count
        if was != limit:
            storage.set_concurrency_slots(pool, limit)
            changed[pool] = (was, limit)
    return changed
