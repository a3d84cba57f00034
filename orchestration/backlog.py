"""The raw files the embeddings stage owes a run: never embedded with the profile's
backbone, or holding images the index locates now that their latest embeddings run was not
asked for (downloaded later, a tar shard added). `scoretag run` and the late-images sensor
both ask this, after the image index was refreshed; it reads the index, never rescans."""

from __future__ import annotations

from assets.embeddings.assets import POST_COLUMNS, store_for
from assets.embeddings.pending import new_images
from assets.images.find import load_index
from assets.ingest.paths import RawFile, inbox_files, superseded_files
from orchestration import objectstore
from orchestration.profile import Profile
from orchestration.resources import BackboneResource


def unembedded(profile: Profile) -> list[RawFile]:
    """Ingested raw files to embed: those the backbone has not embedded, then those with
    images that arrived after their latest embeddings run."""
    layout, settings = profile.layout, profile.settings
    store = store_for(layout, BackboneResource.from_settings(settings.backbone))
    # A file a newer full export superseded is read by no stage, embeddings included.
    retired = {s.file.raw for s in superseded_files(layout)}
    ingested = [
        raw
        for raw in inbox_files(layout)
        if raw not in retired and raw.output(layout, "posts").is_file()
    ]
    pending = [raw for raw in ingested if not store.requested_path(raw.key).is_file()]
    embedded = [raw for raw in ingested if raw not in pending]
    if embedded:
        index = load_index(layout, settings)
        for raw in embedded:
            posts = objectstore.read_parquet(raw.output(layout, "posts"), columns=POST_COLUMNS)
            requested = objectstore.read_parquet(store.requested_path(raw.key))
            if new_images(posts, requested, index, settings.pool.non_image_exts):
                pending.append(raw)
    return pending
