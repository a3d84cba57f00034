"""Dagster resources every stage can ask for."""

from __future__ import annotations

import functools
from typing import Literal

import dagster as dg

from orchestration.backbone import Backbone, Identity, identity, load_backbone, provenance
from orchestration.profile import Profile, load_profile
from orchestration.settings import BackboneSettings, Settings
from orchestration.storage import Layout


class ScoretagResource(dg.ConfigurableResource):
    """The active profile: its settings (profile TOML plus the optional override file), the
    storage root where each stage reads and writes its files, and the object root (a URL)
    where the data-heavy stages do, if any."""

    profile: str
    home: str
    config: str = ""
    object_root: str = ""

    @classmethod
    def for_profile(cls, profile: Profile, config: str = "") -> ScoretagResource:
        layout = profile.layout
        return cls(
            profile=profile.name,
            home=str(layout.home),
            config=config,
            object_root=layout.object_root,
        )

    def load(self) -> Profile:
        return load_profile(self.profile, self.home, self.config or None, self.object_root or None)

    @property
    def settings(self) -> Settings:
        return self.load().settings

    @property
    def layout(self) -> Layout:
        return self.load().layout


class BackboneResource(dg.ConfigurableResource):
    """The open_clip image encoder: model name, weights (pretrained tag or local checkpoint;
    neither: random weights drawn from `seed`), device (`auto`: cuda, mps, then cpu),
    precision and batch size. Defaults come from the profile's [backbone] table; a run may
    override any of them from the launchpad."""

    model: str
    pretrained: str = ""
    checkpoint: str = ""
    device: str = "auto"  # auto, cpu, mps, cuda or cuda:N (checked by BackboneSettings)
    precision: Literal["fp32", "fp16", "bf16"] = "fp16"
    batch_size: int = 256
    seed: int = 0

    @classmethod
    def from_settings(cls, settings: BackboneSettings) -> BackboneResource:
        return cls(**settings.model_dump())

    @property
    def settings(self) -> BackboneSettings:
        return BackboneSettings(**{k: getattr(self, k) for k in BackboneSettings.model_fields})

    def identity(self) -> Identity:
        """Known without loading weights (a checkpoint is hashed, once per process)."""
        return identity(self.settings)

    def provenance(self) -> dict[str, str] | None:
        """A declared local copy's path and sha256, kept beside the identity."""
        return provenance(self.settings)

    def load(self, device: str | None = None) -> Backbone:
        """The model on its device (or on `device`, the one a step claimed: see
        orchestration/devices.py); built once per process."""
        settings = self.settings
        if device is not None and device != settings.device:
            settings = settings.model_copy(update={"device": device})
        return _loaded(settings)


@functools.lru_cache(maxsize=2)
def _loaded(settings: BackboneSettings) -> Backbone:
    return load_backbone(settings)


def resource_defs(profile: Profile, config: str = "") -> dg.Definitions:
    return dg.Definitions(
        resources={
            "scoretag": ScoretagResource.for_profile(profile, config),
            "backbone": BackboneResource.from_settings(profile.settings.backbone),
        }
    )
