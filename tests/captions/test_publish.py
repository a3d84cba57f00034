"""Caption exports published to object storage (fsspec's memory://, standing for s3:// or
gs://): by `scoretag export --out URL` and by caption_shards under the profile's object root."""

from __future__ import annotations

import io
import json
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from assets.captions import publish as publishing
from assets.captions.assets import caption_shards
from assets.captions.manifest import sha256_file
from assets.captions.paths import export_dir
from orchestration import objectstore
from orchestration.profile import load_profile
from orchestration.resources import ScoretagResource
from scoretag.cli import cli


def _export(home, out: str, *args: str, **options):
    command = ["--profile", "demo", "--home", str(home.home), "export", "--out", out, *args]
    return CliRunner().invoke(cli, command, **options)


def _remote_manifest(url: str) -> dict:
    return json.loads((objectstore.location(url) / "manifest.json").read_text())


def _names(url: str) -> set[str]:
    return {p.name for p in objectstore.location(url).iterdir()}


def test_export_to_a_url_publishes_whole_exports_and_uploads_only_changes(home, memory_root):
    url = f"{memory_root}/shards"
    first = _export(home, url, "--format", "parquet", "--shard-size", "4")
    assert first.exit_code == 0, first.output
    manifest = _remote_manifest(url)
    listed = {s["name"] for s in manifest["shards"]}
    assert len(listed) > 1 and _names(url) == listed | {"manifest.json"}
    assert f"{len(listed)} shards uploaded, 0 already there, 0 removed" in first.output
    assert manifest["command"].endswith(f"--out {url}")
    remote = objectstore.location(url)
    for shard in manifest["shards"]:
        data = (remote / shard["name"]).read_bytes()
        rows = pq.read_table(io.BytesIO(data))
        assert rows.num_rows == shard["rows"]
        assert all(c.startswith("score_") for c in rows["caption"].to_pylist())

    again = _export(home, url, "--format", "parquet", "--shard-size", "4")
    assert f"0 shards uploaded, {len(listed)} already there, 0 removed" in again.output

    smaller = _export(home, url, "--format", "parquet", "--shard-size", "4", "--sites", "e621")
    assert smaller.exit_code == 0, smaller.output
    now = {s["name"] for s in _remote_manifest(url)["shards"]}
    assert now and now != listed and _names(url) == now | {"manifest.json"}
    assert f"{len(listed - now)} removed" in smaller.output


class Killed(BaseException):
    """The pod killed mid-publish (click turns a KeyboardInterrupt into an exit code)."""


def test_a_publish_killed_half_way_leaves_the_previous_export_whole(home, memory_root, monkeypatch):
    url = f"{memory_root}/shards"
    assert _export(home, url, "--format", "jsonl", "--shard-size", "3").exit_code == 0
    before = _remote_manifest(url)
    uploads = []
    upload = objectstore.upload

    def dies_on_the_second(source: Path, path):
        uploads.append(path.name)
        if len(uploads) == 2:
            raise Killed
        return upload(source, path)

    monkeypatch.setattr(objectstore, "upload", dies_on_the_second)
    with pytest.raises(Killed):
        _export(home, url, "--format", "jsonl", "--shard-size", "2", catch_exceptions=False)
    assert _remote_manifest(url) == before
    remote = objectstore.location(url)
    for shard in before["shards"]:
        assert (remote / shard["name"]).read_text().count("\n") == shard["rows"]

    monkeypatch.setattr(objectstore, "upload", upload)
    rerun = _export(home, url, "--format", "jsonl", "--shard-size", "2")
    assert rerun.exit_code == 0, rerun.output
    after = _remote_manifest(url)
    assert {s["rows"] for s in after["shards"]} <= {1, 2}
    assert _names(url) == {s["name"] for s in after["shards"]} | {"manifest.json"}


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("nowhere://bucket/x", "Unsupported filesystem: 'nowhere'"),
        ("MEMORY_KOHYA", "a kohya export cannot go to object storage"),
    ],
)
def test_unpublishable_destinations_are_clear_errors(home, memory_root, out, message):
    out = out.replace("MEMORY_KOHYA", f"{memory_root}/kohya")
    result = _export(home, out, "--format", "kohya")
    assert result.exit_code != 0 and message in result.output, result.output
    assert not objectstore.location(memory_root).exists()


def test_publishing_needs_an_export(tmp_path, memory_root):
    with pytest.raises(ValueError, match="holds no export to publish"):
        publishing.publish(tmp_path, objectstore.location(memory_root))


def test_the_asset_publishes_under_the_object_root(home, tmp_path: Path, memory_root):
    config = tmp_path / "captions.toml"
    config.write_text('[captions]\nformats = ["webdataset", "kohya"]\nshard_size = 5\n')
    profile = load_profile("demo", home.home, config, object_root=memory_root)
    result = dg.materialize(
        [caption_shards],
        resources={"scoretag": ScoretagResource.for_profile(profile, str(config))},
    )
    metadata = result.asset_materializations_for_node("caption_shards")[0].metadata
    url = f"{memory_root}/data/caption_shards/webdataset"
    assert metadata["published_webdataset"].value == url
    assert "published_kohya" not in metadata  # its caption files stay by the images
    local = export_dir(profile.layout, "webdataset")
    manifest = _remote_manifest(url)
    assert manifest == json.loads((local / "manifest.json").read_text())
    remote = objectstore.location(url)
    for shard in manifest["shards"]:
        copy = tmp_path / shard["name"]
        copy.write_bytes((remote / shard["name"]).read_bytes())
        assert sha256_file(copy) == shard["sha256"]
    assert not objectstore.location(f"{memory_root}/data/caption_shards/kohya").exists()
