"""Dagster resources every stage can ask for."""

from __future__ import annotations

import dagster as dg

from orchestration.profile import Profile, load_profile
from orchestration.settings import Settings
from orchestration.storage import Layout


class ScoretagResource(dg.ConfigurableResource):
    """The active profile: its settings (profile TOML plus the optional override file) and the
    storage root where each stage reads and writes its files."""

    profile: str
    home: str
    config: str = ""

    @classmethod
    def for_profile(cls, profile: Profile, config: str = "") -> ScoretagResource:
        return cls(profile=profile.name, home=str(profile.layout.home), config=config)

    def load(self) -> Profile:
        return load_profile(self.profile, self.home, self.config or None)

    @property
    def settings(self) -> Settings:
        return self.load().settings

    @property
    def layout(self) -> Layout:
        return self.load().layout


def resource_defs(profile: Profile, config: str = "") -> dg.Definitions:
    return dg.Definitions(resources={"scoretag": ScoretagResource.for_profile(profile, config)})
