"""The one `Definitions` of scoretag, for the active profile (see orchestration/settings.py).

Each stage and each orchestration module contributes its own `Definitions`; this file only
merges them.
"""

from __future__ import annotations

import dagster as dg

from orchestration import jobs, resources
from orchestration.profile import Profile, load_profile


def build_defs(profile: Profile) -> dg.Definitions:
    return dg.Definitions.merge(resources.resource_defs(profile), jobs.job_defs())


defs = build_defs(load_profile())
