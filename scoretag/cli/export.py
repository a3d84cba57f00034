"""`scoretag export` and `scoretag calibrate`: caption shards and score buckets outside the
pipeline, on the active profile's catalog."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from scoretag.cli.common import console, current_profile

FORMATS = ("parquet", "jsonl", "kohya", "kohya_json", "webdataset", "hf", "preference-pairs")
UNTRAINED = "scores from a head on an untrained backbone: no quality signal in these tags"


def _listed(text: str | None, what: str) -> tuple[str, ...] | None:
    if text is None:
        return None
    items = tuple(sorted({part.strip() for part in text.split(",") if part.strip()}))
    if not items:
        raise click.BadParameter(f"give at least one {what}, comma-separated")
    return items


@click.command()
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="parquet", show_default=True)
@click.option(
    "--style",
    default=None,
    metavar="NAME|FILE.toml",
    help="Caption vocabulary: pony-v6 (v6), pony-v7 (v7), animagine, noobai, none, or a "
    "vocabulary file. [default: [captions] style]",
)
@click.option(
    "--min-bucket",
    type=click.IntRange(1, 9),
    default=None,
    help="Lowest bucket exported (and last score_N_up tag). [default: [captions]]",
)
@click.option("--ratings", default=None, metavar="g,s,q,e", help="Ratings to export.")
@click.option("--sites", default=None, metavar="SITE,...", help="Sites to export [default: all].")
@click.option("--shard-size", type=click.IntRange(min=1), default=None, help="Posts per shard.")
@click.option(
    "--link",
    type=click.Choice(("symlink", "hardlink", "copy")),
    default=None,
    help="kohya: how each image is put beside its caption file. [default: symlink]",
)
@click.option(
    "--full",
    is_flag=True,
    help="Build every shard, even where only some changed (e.g. after images were replaced).",
)
@click.option(
    "--head-pairs",
    type=click.IntRange(min=0),
    default=0,
    help="preference-pairs: add up to N pairs ranked by the active head. [default: 0]",
)
@click.option(
    "--margin",
    type=click.FloatRange(min=0),
    default=0.0,
    help="preference-pairs: the least score gap of a head-ranked pair. [default: 0]",
)
@click.option(
    "--out",
    required=True,
    help="Folder of the export (its manifest.json and shards), or an object-store URL "
    "(s3://bucket/prefix, gs://...): written on the storage root, then published there.",
)
def export(
    fmt: str,
    style: str | None,
    min_bucket: int | None,
    ratings: str | None,
    sites: str | None,
    shard_size: int | None,
    link: str | None,
    full: bool,
    head_pairs: int,
    margin: float,
    out: str,
) -> None:
    """Write caption shards of the catalog's active head.

    \b
    scoretag export --format parquet --style v6 --min-bucket 4 --out shards/
    scoretag export --format kohya --style v7 --ratings g,s --link hardlink --out kohya/
    scoretag export --format webdataset --out s3://bucket/shards/
    scoretag export --format hf --out hf/
    scoretag export --format preference-pairs --head-pairs 500 --margin 0.2 --out dpo/

    The head is calibrated first if it has no cut-points yet (see `scoretag calibrate`).
    Re-running builds only the shards whose posts changed in the catalog since (parquet, jsonl,
    webdataset, hf), and rewrites only those whose content changed; --full builds them all.
    """
    from assets.captions.export import CalibrationNeeded, export_catalog
    from assets.captions.paths import staging_dir
    from assets.captions.publish import check_publishable
    from assets.captions.requests import images_of, request_for
    from orchestration import objectstore

    if link is not None and fmt != "kohya":
        raise click.BadParameter("only the kohya format places images", param_hint="--link")
    if fmt != "preference-pairs" and (head_pairs or margin):
        raise click.BadParameter("only preference-pairs takes head-ranked pairs")
    if fmt == "preference-pairs" and (style is not None or min_bucket is not None):
        raise click.BadParameter("preference-pairs captions carry no score tags or buckets")
    profile = current_profile()
    try:
        remote = objectstore.location(out)
        objectstore.filesystem(remote)  # an unknown scheme, or its package missing, fails here
    except (ImportError, ValueError) as e:
        raise click.ClickException(f"--out {out}: {e}") from None
    if objectstore.is_remote(remote):
        local, shown = staging_dir(profile.layout, out), out
    else:
        local, shown, remote = Path(out).expanduser().resolve(), None, None
    try:
        if remote is not None:
            check_publishable(fmt)
        if fmt == "preference-pairs":
            _export_pairs(profile, local, shown, ratings, sites, shard_size, head_pairs, margin)
            return _publish(local, remote, out)
        request = request_for(
            profile,
            fmt,
            local,
            shown,
            style=style,
            min_bucket=min_bucket,
            ratings=_listed(ratings, "rating"),
            sites=_listed(sites, "site"),
            shard_size=shard_size,
            link=link,
        )
        if full:
            request = replace(request, full=True)
        now = datetime.now(UTC)
        args = (profile.layout.catalog, request, images_of(profile))
        try:
            result = export_catalog(*args, writable=False, now=now)
        except CalibrationNeeded as needed:
            console.print(f"head {needed} has no cut-points yet: calibrating it first")
            result = export_catalog(*args, writable=True, now=now)
    except (ValueError, OSError) as e:
        raise click.ClickException(str(e)) from None
    _report(result, local)  # raises when there is no head, so nothing is published
    _publish(local, remote, out)


def _publish(local: Path, remote, out: str) -> None:
    from assets.captions.publish import publish

    if remote is None:
        return
    try:
        console.print(escape(publish(local, remote).message), soft_wrap=True)
    except OSError as e:
        raise click.ClickException(f"publishing to {out} failed: {e}") from None


def _export_pairs(profile, local, shown, ratings, sites, shard_size, head_pairs, margin) -> None:
    """`--format preference-pairs`: human pairs and head-ranked ones (preference_export.py)."""
    from assets.captions.preference import HeadPairs
    from assets.captions.preference_export import export_pairs, pair_request
    from assets.captions.requests import images_of

    request = pair_request(
        profile,
        local,
        shown,
        ratings=_listed(ratings, "rating"),
        sites=_listed(sites, "site"),
        shard_size=shard_size,
        head_pairs=HeadPairs(head_pairs, margin),
    )
    result = export_pairs(profile.layout.catalog, request, images_of(profile), datetime.now(UTC))
    console.print(escape(result.message), soft_wrap=True)
    console.print(
        f"{len(result.manifest['shards'])} shards: {len(result.written)} written, "
        f"{len(result.unchanged)} unchanged, {len(result.removed)} removed; "
        f"manifest {local / 'manifest.json'}",
        soft_wrap=True,
    )


def _report(result, out: Path) -> None:
    for warning in result.warnings:
        console.print(f"[yellow]{escape(warning)}[/]", soft_wrap=True)
    if result.head is None:
        raise click.ClickException(result.message)
    outcome = result.outcome
    shards = outcome.manifest["shards"]
    console.print(escape(result.message), soft_wrap=True)
    if result.why:
        built = "incremental" if result.incremental else "whole"
        console.print(f"{built}: {escape(result.why)} {result.shards}", soft_wrap=True)
    console.print(
        f"{outcome.manifest['rows']:,} captions in {len(shards)} shards: "
        f"{len(outcome.written)} written, {len(outcome.unchanged)} unchanged, "
        f"{len(outcome.removed)} removed; manifest {out / 'manifest.json'}",
        soft_wrap=True,
    )
    for caption in result.examples:
        console.print(f"  {escape(caption)}", soft_wrap=True)
    if "quality_signal" in outcome.manifest and result.examples:
        console.print(f"  [yellow]{UNTRAINED}[/]", soft_wrap=True)


@click.command()
@click.option(
    "--policy",
    type=click.Choice(("absolute", "quantile")),
    default=None,
    help="How cut-points are chosen. [default: [captions] policy]",
)
@click.option(
    "--style",
    default=None,
    metavar="NAME|FILE.toml",
    help="The vocabulary whose tag families are calibrated too. [default: [captions] style]",
)
@click.option(
    "--force", is_flag=True, help="Replace the head's stored cut-points (buckets and families)."
)
def calibrate(policy: str | None, style: str | None, force: bool) -> None:
    """Store the active head's bucket and tag-family cut-points.

    The families are those of the vocabulary (`--style`) cut by value (quality, aesthetic,
    period, ...). A head keeps its cut-points once made (on its first export, or here), so
    tags do not move as the catalog grows; --force replaces them all (every vocabulary's
    families are made again on their next export), and later exports follow.
    """
    from assets.captions.calibration import (
        Policy,
        active_head,
        family_cuts,
        family_scope,
        forget_cuts,
        load,
    )
    from assets.captions.captions import CaptionRules
    from assets.captions.export import calibrate as store_calibration
    from assets.captions.export import connect
    from assets.captions.paths import calibration_dir, calibration_record

    profile = current_profile()
    chosen = Policy.from_settings(profile.settings.captions, name=policy)
    try:
        words = CaptionRules.from_settings(profile.settings.captions, style=style).words
        timeout_s = profile.settings.catalog.lock_timeout_s
        with connect(profile.layout.catalog, True, timeout_s) as con:
            head = active_head(con)
            if head is None:
                raise click.ClickException("no head is active: activate one first")
            calibration = load(con, head, calibration_record(profile.layout, head))
            now = datetime.now(UTC)
            if calibration is not None and not force:
                console.print(f"head {head} is calibrated already; --force replaces its cut-points")
            else:
                calibration = store_calibration(
                    con, head, chosen, calibration_dir(profile.layout), now
                )
            if force:
                forget_cuts(con, head)
            cuts = family_cuts(con, head, words, family_scope(calibration, chosen), True, now)
    except (ValueError, OSError) as e:
        raise click.ClickException(str(e)) from None
    _print_calibration(calibration)
    for name, made in cuts.items():
        _print_family(words.families[name], made)


def _print_family(family, cuts) -> None:
    table = Table(
        "site",
        "rating",
        "tag",
        f"{family.column} above",
        "share when made",
        title=f"{family.name} tags ({family.column}, {family.cuts} cut-points)",
        title_justify="left",
    )
    for group in cuts.groups:
        starts = [f"{v:.4g}" for v in group.thresholds] + ["-"]
        for tag, start, share in zip(family.tags, starts, group.shares, strict=True):
            table.add_row(group.site, group.rating, tag or "(none)", start, f"{share:.1%}")
    console.print(table)


def _print_calibration(calibration) -> None:
    table = Table(
        "bucket",
        "min_score",
        "share of scope",
        title=f"head {calibration.head_version}: policy {calibration.policy}, "
        f"made {calibration.created_at:%Y-%m-%d %H:%M}",
        title_justify="left",
    )
    starts = [0.0, *calibration.starts]
    shares = list(calibration.shares) or [None] * len(starts)
    for bucket, (start, share) in enumerate(zip(starts, shares, strict=True), start=1):
        table.add_row(f"score_{bucket}", f"{start:.4f}", "" if share is None else f"{share:.1%}")
    console.print(table)
