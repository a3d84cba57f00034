"""An export published to object storage (s3://, gs://: any fsspec URL), where training jobs
on other machines read it.

The export is written on the local disk first, as always (shards.py), then mirrored, in the
order that keeps a reader who goes by the manifest on one whole export: the shards the remote
folder lacks are uploaded (shard names carry their content's hash, so a name already there is
the same bytes and is not sent again), then the manifest in one PUT, then the remote shards it
no longer lists are deleted. A publish killed half-way leaves the previous manifest and every
shard it lists; the next one uploads what is missing.

The kohya format is not published: its caption files sit beside the images or under a
mirror of their tree, which a training job reads from the same disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from assets.captions import manifest as manifests
from orchestration import objectstore
from orchestration.objectstore import Location

UNPUBLISHED = ("kohya",)


@dataclass
class Published:
    url: str
    uploaded: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # already there, the same content
    removed: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        return (
            f"published to {self.url}: {len(self.uploaded)} shards uploaded, "
            f"{len(self.kept)} already there, {len(self.removed)} removed"
        )


def check_publishable(fmt: str) -> None:
    if fmt in UNPUBLISHED:
        raise ValueError(
            f"a {fmt} export cannot go to object storage: its caption files sit beside the "
            "images (or under a mirror of their tree) on the disk a trainer reads them from"
        )


def publish(out: Path, remote: Location) -> Published:
    """Mirror the local export in `out` (with its manifest) to the folder `remote`."""
    manifest = manifests.read(out)
    if manifest is None:
        raise ValueError(f"{out} holds no export to publish (no {manifests.MANIFEST})")
    check_publishable(manifest["format"])
    present = _shard_names(remote)
    result = Published(objectstore.url(remote))
    for shard in manifest["shards"]:
        name = shard["name"]
        if name in present:
            result.kept.append(name)
        else:
            objectstore.upload(out / name, remote / name)
            result.uploaded.append(name)
    objectstore.upload(out / manifests.MANIFEST, remote / manifests.MANIFEST)
    listed = {s["name"] for s in manifest["shards"]}
    for name in sorted(present - listed):
        objectstore.remove(remote / name)
        result.removed.append(name)
    return result


def _shard_names(remote: Location) -> set[str]:
    if not remote.is_dir():
        return set()
    return {p.name for p in remote.iterdir() if manifests.SHARD.match(p.name)}
