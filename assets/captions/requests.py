"""An export request made from the profile: its [captions] settings, overridden by the
command line, where the images are, and what the manifest says of the scores' quality."""

from __future__ import annotations

from pathlib import Path

from assets.captions.calibration import Policy
from assets.captions.captions import CaptionRules
from assets.captions.export import Images, Request, command_line
from assets.captions.lookup import entries_for
from assets.captions.paths import calibration_dir
from assets.captions.selection import Filter
from assets.captions.shards import Target
from assets.head.paths import registry
from assets.images.find import load_index
from assets.ingest.current import current_posts
from assets.ingest.paths import posts_files
from orchestration.profile import Profile

NO_SIGNAL = "none: the active head was trained on an untrained backbone's embeddings"


def quality_notes(profile: Profile, head: str | None) -> dict:
    """What a manifest says when the scores carry no quality signal (the demo's)."""
    if head is None:
        return {}
    card = registry(profile.layout).load(head).card
    return {"quality_signal": NO_SIGNAL} if card.get("trained_untrained_backbone") else {}


def images_of(profile: Profile) -> Images:
    layout = profile.layout
    return Images(
        root=layout.images,
        index=lambda: load_index(layout, profile.settings),
        sha512=lambda: current_posts(posts_files(layout), ["sha512"]),
        entries=lambda keys: entries_for(layout, profile.settings, keys),
    )


def request_for(
    profile: Profile, fmt: str, out: Path, shown: str | None = None, **overrides
) -> Request:
    """An export request from the profile's [captions] settings; `overrides` (style,
    min_bucket, ratings, sites, shard_size, link) from the command line win. `shown` is the
    destination the manifest's command names, where it is not `out` (an object-store URL the
    export is published to)."""
    settings = profile.settings.captions
    given = {k: v for k, v in overrides.items() if v is not None}
    rules = CaptionRules.from_settings(
        settings, style=given.get("style"), min_bucket=given.get("min_bucket")
    )
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
        link=given.get("link", "symlink"),
    )
    command = command_line(
        profile.name, profile.config, fmt, rules, where, shown or out, size, given.get("link")
    )
    notes = quality_notes(profile, registry(profile.layout).active_version())
    policy = Policy.from_settings(settings)
    return Request(
        target,
        rules,
        where,
        policy,
        calibration_dir(profile.layout),
        command,
        notes,
        lock_timeout_s=profile.settings.catalog.lock_timeout_s,
        memory_mb=profile.settings.catalog.memory_mb,
    )
