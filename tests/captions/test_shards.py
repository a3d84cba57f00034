"""Writing an export over a previous one: only changed shards are written, stale ones go, the
manifest matches the files, and a killed export leaves the previous one whole."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from assets.captions import manifest as manifests
from assets.captions.captions import CaptionRules
from assets.captions.shards import Target, write_shards
from scoretag.benchmarks.captions import RULES, synthetic_posts
from tests.captions.test_formats import located_rows

ROOT = Path(__file__).resolve().parents[2]


def _write(rows: pl.DataFrame, out: Path, fmt: str = "parquet", **target):
    return write_shards(rows, CaptionRules(min_bucket=4), Target(fmt, out, 3, **target), {})


def _stats(out: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.iterdir()}


def test_a_re_export_writes_only_the_shards_whose_content_changed(tmp_path: Path):
    rows = located_rows(tmp_path / "images")
    out = tmp_path / "out"
    first = _write(rows, out)
    assert len(first.written) == 3 and not first.unchanged
    before = _stats(out)

    same = _write(rows, out)
    assert same.written == [] and same.unchanged == first.written and same.removed == []
    assert _stats(out) == before  # nothing rewritten, the manifest included

    changed = rows.with_columns(
        tags=pl.when(pl.col("post_id") == 106).then(pl.lit(["new_tag"])).otherwise("tags")
    )
    again = _write(changed, out)
    assert again.unchanged == first.written[:2] and len(again.written) == 1
    assert again.removed == [first.written[2]]
    after = _stats(out)
    assert all(after[name] == before[name] for name in first.written[:2])
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*again.unchanged, *again.written, "manifest.json"]
    )
    assert manifests.verify(out, again.manifest) == []


def test_fewer_rows_remove_the_shards_no_longer_listed(tmp_path: Path):
    rows = located_rows(tmp_path / "images")
    out = tmp_path / "out"
    _write(rows, out)
    fewer = _write(rows.head(3), out)
    assert len(fewer.manifest["shards"]) == 1 and len(fewer.removed) == 2
    empty = _write(rows.clear(), out)
    assert empty.manifest["shards"] == [] and empty.manifest["rows"] == 0
    assert [p.name for p in out.iterdir()] == ["manifest.json"]


def test_the_manifest_check_sees_a_changed_shard(tmp_path: Path):
    out = tmp_path / "out"
    outcome = _write(located_rows(tmp_path / "images"), out)
    shard = out / outcome.manifest["shards"][1]["name"]
    shard.write_bytes(shard.read_bytes() + b"x")
    (out / outcome.manifest["shards"][2]["name"]).unlink()
    problems = manifests.verify(out, outcome.manifest)
    assert problems == [
        f"{shard.name}: sha256 differs from the manifest's",
        f"{outcome.manifest['shards'][2]['name']}: missing",
    ]


def test_a_kohya_re_export_removes_captions_it_no_longer_writes(tmp_path: Path):
    root = tmp_path / "images"
    rows = located_rows(root)
    out = tmp_path / "out"
    _write(rows, out, "kohya", image_root=root)
    gone = out / "1_score_4" / "e621_106"  # bucket 4 + 6 % 6
    assert gone.with_suffix(".txt").is_file()
    _write(rows.head(6), out, "kohya", image_root=root)
    assert not gone.with_suffix(".txt").exists()
    assert not list(gone.parent.glob(f"{gone.name}.*"))  # the image link went with it
    assert len(list(out.rglob("*.txt"))) == 6


def test_a_killed_export_leaves_the_previous_one_whole(tmp_path: Path):
    out = tmp_path / "out"
    write_shards(
        synthetic_posts(40, 0).with_columns(bucket=5), RULES, Target("parquet", out, 10), {}
    )
    manifest_bytes = (out / "manifest.json").read_bytes()
    before = _stats(out)

    # another export of other rows, killed once it has staged its first shard
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.captions.killable_export", str(out), "40", "1"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        # a child that never gets there fails the test instead of hanging it
        ready, _, _ = select.select([process.stdout], [], [], 120)
        assert ready, "the export never staged its first shard"
        assert process.stdout.readline().strip() == "staged 0"
        assert any(p.name.endswith(".tmp") for p in out.iterdir())  # it was writing
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    assert (out / "manifest.json").read_bytes() == manifest_bytes
    manifest = json.loads(manifest_bytes)
    assert manifests.verify(out, manifest) == []
    visible = {p.name for p in out.iterdir() if not p.name.startswith(".")}
    assert visible == {name for name in before}  # no new shard, none replaced
    assert all(_stats(out)[name] == before[name] for name in before)

    # the next export clears the dead writer's temporary files
    done = write_shards(
        synthetic_posts(40, 1).with_columns(bucket=5), RULES, Target("parquet", out, 10), {}
    )
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    assert manifests.verify(out, done.manifest) == []


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (lambda out: Target("csv", out), "unknown export format 'csv'"),
        (lambda out: Target("parquet", out, 0), "shards hold at least one post"),
        (lambda out: Target("kohya", out), "the kohya format needs the image root"),
        (
            lambda out: Target("kohya", out, sidecar_layout="next", image_root=out),
            "mirror or beside",
        ),
    ],
)
def test_bad_targets_are_clear_errors(tmp_path: Path, target, message: str):
    with pytest.raises(ValueError, match=message):
        target(tmp_path)


def test_one_folder_holds_one_format(tmp_path: Path):
    rows = located_rows(tmp_path / "images")
    _write(rows, tmp_path / "out")
    with pytest.raises(ValueError, match="holds a parquet export: give jsonl its own folder"):
        _write(rows, tmp_path / "out", "jsonl")


def test_a_kohya_export_never_replaces_an_image_it_did_not_place(tmp_path: Path):
    root = tmp_path / "images"
    rows = located_rows(root)
    (root / "1_score_4").mkdir()
    (root / "1_score_4" / "e621_100.jpg").write_bytes(b"someone's picture")
    with pytest.raises(ValueError, match="not written by it: .*e621_100.jpg"):
        _write(rows, root, "kohya", image_root=root)  # exported into the image root itself
    assert (root / "1_score_4" / "e621_100.jpg").read_bytes() == b"someone's picture"
    assert all(not p.is_symlink() for p in root.rglob("*"))
