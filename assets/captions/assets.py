"""caption_shards: the scored catalog as caption shards in each configured format, every
caption starting with the score tags of its post's calibrated bucket."""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from assets.captions.export import Result, export_catalog
from assets.captions.manifest import MANIFEST
from assets.captions.paths import configured_exports, export_dir, published_dir
from assets.captions.publish import UNPUBLISHED, publish
from assets.captions.requests import images_of, request_for
from assets.catalog.assets import scored_catalog
from orchestration.plots import bar_png, markdown_image
from orchestration.pools import DUCKDB
from orchestration.resources import ScoretagResource


def _plot(result: Result) -> dg.MetadataValue:
    counts = {f"score_{b}": n for b, n in sorted(result.buckets.items())}
    title = f"selected posts per bucket, head {result.head}"
    return markdown_image(bar_png(counts, title, "bucket"), "posts per bucket")


def _examples(result: Result) -> dg.MetadataValue:
    return dg.MetadataValue.md("\n".join(f"- `{c}`" for c in result.examples) or "(none)")


def _how(result: Result) -> str:
    """Incremental (and what it built), or whole (and why)."""
    return f"{'incremental' if result.incremental else 'whole'}: {result.why}"


def _metadata(
    results: dict[str, Result], folders: dict[str, Path], published: dict[str, str]
) -> dict:
    first = next(iter(results.values()))
    metadata: dict = {
        **{f"published_{fmt}": dg.MetadataValue.url(url) for fmt, url in published.items()},
        "head_version": first.head or "none",
        "selected": first.selected,
        "dagster/row_count": first.rows,
        **{f"rows_{fmt}": r.rows for fmt, r in results.items()},
        **{f"left_out_{fmt}": str(r.dropped or "none") for fmt, r in results.items()},
        **{f"export_{fmt}": _how(r) for fmt, r in results.items() if r.head is not None},
        **{
            f"shards_{fmt}": dg.MetadataValue.json(r.shards)
            for fmt, r in results.items()
            if r.head is not None
        },
        **{
            f"seconds_{fmt}": dg.MetadataValue.json(r.phases)
            for fmt, r in results.items()
            if r.head is not None
        },
    }
    if first.head is None:
        return metadata
    calibration = first.calibration
    metadata.update(
        {
            "calibration": f"{calibration.policy}, made {calibration.created_at:%Y-%m-%d %H:%M}",
            "calibrated_this_run": first.calibrated_now,
            "bucket_distribution": _plot(first),
            "example_captions": _examples(first),
            # One export per other vocabulary ([captions] also_styles): its own captions.
            **{
                f"example_captions_{name}": _examples(r)
                for name, r in results.items()
                if r.head is not None and r.style_name != first.style_name
            },
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
    $SCORETAG_HOME/data/caption_shards/<format>/ with a manifest.json (and
    <format>-<style>/ for each of `[captions] also_styles`), and published to
    <object root>/data/caption_shards/<format>/ when the profile has an object root (all but
    kohya, whose caption files sit by the images); a head is calibrated on its first export."""
    profile = scoretag.load()
    now = datetime.now(UTC)
    results: dict[str, Result] = {}
    published: dict[str, str] = {}
    settings = profile.settings.captions
    exports = configured_exports(settings.formats, settings.also_styles)
    folders = {name: export_dir(profile.layout, name) for name in exports}
    for name, folder in folders.items():
        fmt, style = exports[name]
        request = request_for(profile, fmt, folder, style=style)
        try:
            result = export_catalog(profile.layout.catalog, request, images_of(profile), True, now)
        except (ValueError, OSError) as e:
            raise dg.Failure(str(e)) from None
        results[name] = result
        context.log.info(f"{name}: {result.message}")
        if result.head is not None:
            counts = ", ".join(f"{n} {what}" for what, n in result.shards.items())
            context.log.info(f"{name}: {_how(result)}; shards {counts}")
        for warning in result.warnings:
            context.log.warning(warning)
        if result.head is None:
            context.log.warning(result.message)
            break
        remote = published_dir(profile.layout, name)
        if remote is None:
            continue
        if fmt in UNPUBLISHED:
            context.log.info(f"{name}: kept on the storage root, beside the images")
            continue
        try:
            done = publish(folder, remote)
        except OSError as e:
            raise dg.Failure(f"{name}: publishing to {remote} failed: {e}") from None
        published[name] = done.url
        context.log.info(f"{name}: {done.message}")
    return dg.MaterializeResult(metadata=_metadata(results, folders, published))
