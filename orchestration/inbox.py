"""Which inbox files still need ingesting: the question both the inbox sensor and
`scoretag run` ask, answered from the instance, so neither re-ingests what the other did."""

from __future__ import annotations

import dagster as dg

from assets.ingest.paths import RawFile, inbox_files, signature
from orchestration.jobs import RAW_POSTS
from orchestration.storage import Layout

RAW_FILES = "raw_files"  # the dynamic partitions of raw_posts


def latest_data_version(
    instance: dg.DagsterInstance, asset: dg.AssetKey, partition: str
) -> str | None:
    """The data version the asset's partition recorded when it last materialized."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset, asset_partitions=[partition]), limit=1
    ).records
    if not records:
        return None
    return records[0].asset_materialization.tags.get("dagster/data_version")


def ingested_signature(instance: dg.DagsterInstance, key: str) -> str | None:
    """The signature (size and mtime) of the file when its partition last materialized."""
    return latest_data_version(instance, RAW_POSTS, key)


def is_stale(instance: dg.DagsterInstance, layout: Layout, raw: RawFile) -> bool:
    return ingested_signature(instance, raw.key) != signature(raw.path(layout))


def stale_files(instance: dg.DagsterInstance, layout: Layout) -> list[RawFile]:
    """Inbox files never ingested, or changed since they were."""
    return [raw for raw in inbox_files(layout) if is_stale(instance, layout, raw)]


def register(instance: dg.DagsterInstance, files: list[RawFile]) -> list[str]:
    """Add the files' partitions that do not exist yet; returns the new keys."""
    known = set(instance.get_dynamic_partitions(RAW_FILES))
    new = [f.key for f in files if f.key not in known]
    if new:
        instance.add_dynamic_partitions(RAW_FILES, new)
    return new
