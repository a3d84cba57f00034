"""Jobs a user launches by name."""

from __future__ import annotations

import dagster as dg

MAIN_JOB = "main"

main_job = dg.define_asset_job(
    MAIN_JOB,
    selection=dg.AssetSelection.all(),
    description="Materialize the whole lineage, with every asset check.",
)


def job_defs() -> dg.Definitions:
    return dg.Definitions(jobs=[main_job])
