"""caption_shards: the scored catalog as caption shards in each configured format, every
caption starting with the score tags of its post's calibrated bucket."""

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from assets.captions.calibration import Policy
from assets.captions.captions import CaptionRules
from assets.captions.export import (
    Images,
    Request,
    Result,
    command_line,
    export_catalog,
)
from assets.captions.manifest import MANIFEST
from assets.captions.paths import calibration_record, export_dir
from assets.captions.selection import Filter
from assets.captions.shards import Target
from assets.catalog.assets import scored_catalog
from assets.embeddings.assets import STAGE as EMBEDDINGS
from assets.head.paths import registry
from assets.ingest.current import current_posts
from assets.ingest.paths import posts_files
from orchestration.plots import bar_png, markdown_image
from orchestration.pools import DUCKDB
from orchestration.profile import Profile
from orchestration.resources import ScoretagResource

NO_SIGNAL = "none: the active head was trained on an untrained backbone's embeddings"


def quality_notes(profile: Profile, head: str | None) -> dict:
    """What a manifest says when the scores carry no quality signal (the demo's)."""
    if head is None:
        return {}
    card = registry(profile.layout).load(head).card
    return {"quality_signal": NO_SIGNAL} if card.get("trained_untrained_backbone") else {}


def images_of(profile: Profile) -> Images:
    layout, index = profile.layout, profile.settings.embed.image_index
    return Images(
        root=layout.images,
        cache_dir=layout.stage_dir(EMBEDDINGS) / "cache",
        index=Path(index).expanduser() if index else None,
        sha512=lambda: current_posts(posts_files(layout), ["sha512"]),
    )


def request_for(profile: Profile, fmt: str, out: Path, **overrides) -> Request:
    """An export request from the profile's [captions] settings; `overrides` (style,
    min_bucket, ratings, sites, shard_size) from the command line win."""
    settings = profile.settings.captions
    given = {k: v for k, v in overrides.items() if v is not None}
    rules = CaptionRules.from_settings(settings, **given)
    where = Filter(
        min_bucket=rules.min_bucket,
        ratings=tuple(given.get("ratings", settings.ratings)),
        sites=tuple(given.get("sites", settings.sites)),
    )
    size = given.get("shard_size", settings.shard_size)
    target = Target(
        fmt,
        out,
        size,
        caption_extension=settings.caption_extension,
        sidecar_layout=settings.sidecar_layout,
        image_root=profile.layout.images,
    )
    command = command_line(profile.name, profile.config, fmt, rules, where, out, size)
    record = calibration_record(profile.layout, "any").parent
    return Request(target, rules, where, Policy.from_settings(settings), record, command)


def _plot(result: Result) -> dg.MetadataValue:
    counts = {f"score_{b}": n for b, n in sorted(result.buckets.items())}
    title = f"selected posts per bucket, head {result.head}"
    return markdown_image(bar_png(counts, title, "bucket"), "posts per bucket")


def _metadata(results: dict[str, Result], folders: dict[str, Path]) -> dict:
    first = next(iter(results.values()))
    metadata: dict = {
        "head_version": first.head or "none",
        "selected": first.selected,
        "dagster/row_count": first.rows,
        **{f"rows_{fmt}": r.rows for fmt, r in results.items()},
        **{f"left_out_{fmt}": str(r.dropped or "none") for fmt, r in results.items()},
    }
    if first.head is None:
        return metadata
    calibration = first.calibration
    metadata.update(
        {
            "calibration": f"{calibration.policy}, made {calibration.created_at:%Y-%m-%d %H:%M}",
            "calibrated_this_run": first.calibrated_now,
            "bucket_distribution": _plot(first),
            "example_captions": dg.MetadataValue.md(
                "\n".join(f"- `{c}`" for c in first.examples) or "(none)"
            ),
            **{
                f"manifest_{fmt}": dg.MetadataValue.path(str(folder / MANIFEST))
                for fmt, folder in folders.items()
            },
        }
    )
    if "quality_signal" in first.outcome.manifest:
        metadata["quality_signal"] = first.outcome.manifest["quality_signal"]
    return metadata


@dg.asset(
    deps=[scored_catalog],
    group_name="export",
    # It may write the head's calibration into the catalog, and DuckDB refuses even a
    # reading connection while another process writes.
    pool=DUCKDB,
    kinds={"duckdb", "parquet"},
    owners=["team:curation"],
    code_version="1",
)
def caption_shards(
    context: dg.AssetExecutionContext, scoretag: ScoretagResource
) -> dg.MaterializeResult:
    """Caption shards of the active head's scored catalog in each `[captions] formats`, under
    $SCORETAG_HOME/data/caption_shards/<format>/ with a manifest.json; a head is calibrated
    on its first export."""
    profile = scoretag.load()
    now = datetime.now(UTC)
    notes = quality_notes(profile, registry(profile.layout).active_version())
    results: dict[str, Result] = {}
    folders = {fmt: export_dir(profile.layout, fmt) for fmt in profile.settings.captions.formats}
    for fmt, folder in folders.items():
        request = replace(request_for(profile, fmt, folder), notes=notes)
        try:
            result = export_catalog(profile.layout.catalog, request, images_of(profile), True, now)
        except ValueError as e:
            raise dg.Failure(str(e)) from None
        results[fmt] = result
        context.log.info(f"{fmt}: {result.message}")
        if result.head is None:
            context.log.warning(result.message)
            break
    return dg.MaterializeResult(metadata=_metadata(results, folders))
