"""The one `Definitions` of scoretag, for the active profile (see orchestration/settings.py).

Each stage contributes its assets (assets.py) and checks (checks.py); orchestration adds the
resources, jobs and sensors. This file only merges them.
"""

from __future__ import annotations

import dagster as dg

from assets.captions import assets as captions_assets
from assets.captions import checks as captions_checks
from assets.catalog import assets as catalog_assets
from assets.catalog import checks as catalog_checks
from assets.embeddings import assets as embeddings_assets
from assets.embeddings import checks as embeddings_checks
from assets.evaluation import assets as evaluation_assets
from assets.evaluation import checks as evaluation_checks
from assets.head import assets as head_assets
from assets.head import checks as head_checks
from assets.images import assets as images_assets
from assets.images import checks as images_checks
from assets.ingest import assets as ingest_assets
from assets.ingest import checks as ingest_checks
from assets.labels import assets as labels_assets
from assets.labels import checks as labels_checks
from assets.normalize import assets as normalize_assets
from assets.normalize import checks as normalize_checks
from assets.pool import assets as pool_assets
from assets.pool import checks as pool_checks
from orchestration import deploy, jobs, resources, schedules, sensors
from orchestration.profile import Profile, load_profile

STAGES = (
    ingest_assets,
    ingest_checks,
    images_assets,
    images_checks,
    normalize_assets,
    normalize_checks,
    pool_assets,
    pool_checks,
    labels_assets,
    labels_checks,
    embeddings_assets,
    embeddings_checks,
    head_assets,
    head_checks,
    catalog_assets,
    catalog_checks,
    captions_assets,
    captions_checks,
    evaluation_assets,
    evaluation_checks,
)


def stage_defs() -> dg.Definitions:
    return dg.Definitions(
        assets=dg.load_assets_from_modules(STAGES),
        asset_checks=dg.load_asset_checks_from_modules(STAGES),
    )


def build_defs(profile: Profile) -> dg.Definitions:
    stages = stage_defs()
    return dg.Definitions.merge(
        stages,
        resources.resource_defs(profile, profile.config),
        jobs.job_defs(),
        sensors.sensor_defs(),
        schedules.schedule_defs(profile),
        deploy.deploy_defs(profile.settings.deploy, stages),
    )


defs = build_defs(load_profile())
