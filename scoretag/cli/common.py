"""What every command shares: the profile it runs on, and one console to print to."""

from __future__ import annotations

from dataclasses import dataclass, field

import click
from rich.console import Console

from orchestration.profile import Profile, load_profile
from orchestration.settings import ProfileError

console = Console(highlight=False)


@dataclass
class ProfileLoader:
    """Loads the profile on first use, so `--help` works even when a profile is broken."""

    profile: str | None
    home: str | None
    config: str | None
    _loaded: Profile | None = field(default=None, repr=False)

    def get(self) -> Profile:
        if self._loaded is None:
            try:
                self._loaded = load_profile(self.profile, self.home, self.config)
            except ProfileError as e:
                raise click.ClickException(str(e)) from None
        return self._loaded


def current_profile() -> Profile:
    return click.get_current_context().find_object(ProfileLoader).get()
