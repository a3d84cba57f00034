"""Dagster resources every stage can ask for."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from orchestration.profile import Profile
from orchestration.storage import Layout


class StorageResource(dg.ConfigurableResource):
    """The profile's storage root: where each stage reads and writes its files."""

    profile: str
    home: str
    image_root: str = ""

    @classmethod
    def for_profile(cls, profile: Profile) -> StorageResource:
        return cls(
            profile=profile.name,
            home=str(profile.layout.home),
            image_root=profile.settings.image_root,
        )

    @property
    def layout(self) -> Layout:
        return Layout(home=Path(self.home), image_root_override=self.image_root)


def resource_defs(profile: Profile) -> dg.Definitions:
    return dg.Definitions(resources={"storage": StorageResource.for_profile(profile)})
