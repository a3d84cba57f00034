"""Checks on caption_shards, reading back each format's export as its trainer would: every
caption starts with its bucket's tags and none is empty; the shards' rows add up to the
selection and their checksums match the manifest; the calibration scope's buckets still hold
the shares they held when the head was calibrated (a warning: recalibrate when they drift)."""

import dagster as dg
import polars as pl

from assets.captions.assets import caption_shards
from assets.captions.calibration import (
    Policy,
    active_head,
    drift,
    family_reports,
    family_scope,
    load,
)
from assets.captions.captions import CaptionRules
from assets.captions.export import connect
from assets.captions.paths import calibration_record, made_exports
from assets.captions.selection import Filter, selection_buckets
from assets.captions.verify import caption_counts, count_problems, read_export, rules_of
from orchestration import quality
from orchestration.plots import bar_png, markdown_image, markdown_table
from orchestration.pools import DUCKDB
from orchestration.profile import Profile
from orchestration.resources import ScoretagResource


def _exports(profile: Profile) -> dict[str, tuple]:
    """(folder, manifest) of each configured export that has been made."""
    settings = profile.settings.captions
    return made_exports(profile.layout, settings.formats, settings.also_styles)


def _zero(columns) -> list:
    import great_expectations as gx

    e = gx.expectations
    return [e.ExpectColumnValuesToBeBetween(column=c, min_value=0, max_value=0) for c in columns]


@dg.asset_check(asset=caption_shards)
def caption_shards_captions(scoretag: ScoretagResource) -> dg.AssetCheckResult:
    """Every caption, read back from every shard, starts with the tags of its bucket in the
    export's style (then the rating tag); none is empty."""
    import great_expectations as gx

    exports = _exports(scoretag.load())
    if not exports:
        return dg.AssetCheckResult(passed=True, description="nothing exported yet")
    outcomes, metadata = [], {}
    for fmt, (folder, manifest) in exports.items():
        rows = read_export(folder, manifest)
        counts = caption_counts(rows, rules_of(manifest))
        metadata.update({f"{fmt}_{k}": v for k, v in counts.items()})
        sample = quality.sample(rows.lazy().select("caption"))
        outcomes.append(
            quality.validate(
                pl.DataFrame([counts]),
                _zero(["empty_captions", "wrong_prefix"]),
                f"{fmt} captions",
            )
        )
        if sample.height:
            outcomes.append(
                quality.validate(
                    sample,
                    [
                        gx.expectations.ExpectColumnValuesToNotBeNull(column="caption"),
                        gx.expectations.ExpectColumnValueLengthsToBeBetween(
                            column="caption", min_value=1
                        ),
                    ],
                    f"{fmt} caption sample",
                )
            )
    return quality.check_result(outcomes, metadata=metadata)


# In the duckdb pool: it counts the selection in the catalog, which another process may write.
@dg.asset_check(asset=caption_shards, pool=DUCKDB)
def caption_shards_manifest(scoretag: ScoretagResource) -> dg.AssetCheckResult:
    """Each shard holds the rows its manifest says, with the manifest's sha256; the rows
    and the posts left out add up to the selection, which the catalog still selects."""
    profile = scoretag.load()
    exports = _exports(profile)
    if not exports:
        return dg.AssetCheckResult(passed=True, description="nothing exported yet")
    outcomes, metadata = [], {}
    with connect(profile.layout.catalog, False, profile.settings.catalog.lock_timeout_s) as con:
        for fmt, (folder, manifest) in exports.items():
            where = Filter.described(manifest["filter"])
            selected = sum(selection_buckets(con, manifest["head_version"], where).values())
            counts = count_problems(read_export(folder, manifest), manifest, folder, selected)
            metadata.update({f"{fmt}_{k}": v for k, v in counts.items()})
            problems = [k for k in counts if k.endswith(("_off", "_unaccounted", "_changed"))]
            outcomes.append(
                quality.validate(
                    pl.DataFrame([counts]),
                    _zero([*problems, "checksum_mismatches"]),
                    f"{fmt} manifest",
                )
            )
    return quality.check_result(outcomes, metadata=metadata)


@dg.asset_check(asset=caption_shards, pool=DUCKDB)
def caption_shards_bucket_distribution(scoretag: ScoretagResource) -> dg.AssetCheckResult:
    """Each bucket's share of the calibration scope is within `[captions]
    distribution_tolerance` of its share when the head was calibrated, and so is each tag's
    share of every family of the exports' vocabularies (quality, aesthetic, period, ...),
    per site and rating where the family is cut so; past it, the catalog has drifted from
    the frozen cut-points (`scoretag calibrate --force` makes new ones)."""
    import great_expectations as gx

    profile = scoretag.load()
    tolerance = profile.settings.captions.distribution_tolerance
    if not profile.layout.catalog.is_file():
        return dg.AssetCheckResult(passed=True, description="no catalog yet")
    vocabularies = {v.name: v for v in _vocabularies(profile)}
    with connect(profile.layout.catalog, False, profile.settings.catalog.lock_timeout_s) as con:
        head = active_head(con)
        calibration = load(con, head, calibration_record(profile.layout, head)) if head else None
        if calibration is None or not calibration.shares:
            why = "no calibrated head" if calibration is None else "how it was made is unknown"
            return dg.AssetCheckResult(passed=True, description=f"nothing to compare: {why}")
        shares = drift(con, calibration)
        scope = family_scope(calibration, Policy.from_settings(profile.settings.captions))
        reports = family_reports(con, head, list(vocabularies.values()), scope)

    def within() -> list:  # a suite owns its expectations: one list per validation
        return [
            gx.expectations.ExpectColumnValuesToBeBetween(
                column="difference", min_value=0, max_value=tolerance
            )
        ]

    outcomes = [quality.validate(shares, within(), "bucket shares")]
    metadata = {
        "head_version": head,
        "tolerance": tolerance,
        "largest_difference": float(shares["difference"].max()),
        "shares": markdown_table(
            shares.select("bucket", pl.col("then", "now").round(4)).to_dicts()
        ),
    }
    for name, (tags, counts) in reports.items():
        if tags.height == 0:
            continue
        outcomes.append(quality.validate(tags, within(), f"{name} tag shares"))
        metadata[f"{name}_largest_difference"] = float(tags["difference"].max())
        metadata[f"{name}_shares"] = markdown_table(
            tags.drop("difference").with_columns(pl.col("then", "now").round(4)).to_dicts()
        )
        for family, found in counts.items():
            title = f"{name} {family} tags now, head {head}"
            metadata[f"{name}_{family}_tags"] = markdown_image(
                bar_png(found, title, family), f"{family} tags"
            )
    return quality.check_result(outcomes, metadata=metadata, severity=dg.AssetCheckSeverity.WARN)


def _vocabularies(profile: Profile) -> list:
    """The vocabularies of the configured style and of every export made."""
    found = [CaptionRules.from_settings(profile.settings.captions).words]
    found += [rules_of(manifest).words for _, manifest in _exports(profile).values()]
    return found
