"""Each format read back with the reader its trainer uses (pyarrow, json, tarfile, plain
files), and the same rows giving the same bytes."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from assets.captions.captions import CaptionRules
from assets.captions.formats import ROW_COLUMNS, read_rows
from assets.captions.shards import Target, write_shards

RULES = CaptionRules(style="v6", min_bucket=4)


def located_rows(root: Path, n: int = 7) -> pl.DataFrame:
    """`n` posts whose images are small files under `root` (two in a sub-folder)."""
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        name = f"{'sub/' if i < 2 else ''}{i:032x}.{'png' if i % 2 else 'jpg'}"
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(f"image bytes {i}".encode() * (i + 1))
        rows.append(
            {
                "site": "danbooru" if i % 3 else "e621",
                "post_id": 100 + i,
                "md5": f"{i:032x}",
                "rating": "gsqe"[i % 4],
                "bucket": 4 + i % 6,
                "score": 0.4 + i / 20,
                "width": 640,
                "height": 480 + i,
                "tags": ["long_hair", f"tag_{i}", "smile_(happy)"],
                "character_tags": ["hatsune_miku"],
                "copyright_tags": [],
                "artist_tags": [f"artist_{i}"],
                "species_tags": None,
                "meta_tags": None,
                "filename": name,
                "image_path": str(root / name),
                "file_ext": name.rsplit(".", 1)[1],
                "tar_offset": None,
                "tar_length": None,
            }
        )
    return pl.DataFrame(rows, schema_overrides={"species_tags": pl.List(pl.String)})


def _export(rows, fmt: str, out: Path, root: Path, **target):
    outcome = write_shards(rows, RULES, Target(fmt, out, 3, image_root=root, **target), {})
    return outcome.manifest


def test_parquet_reads_back_with_pyarrow_in_export_order(tmp_path: Path):
    rows = located_rows(tmp_path / "images")
    manifest = _export(rows, "parquet", tmp_path / "out", tmp_path / "images")
    assert [s["rows"] for s in manifest["shards"]] == [3, 3, 1] and manifest["rows"] == 7
    tables = [pq.read_table(tmp_path / "out" / s["name"]) for s in manifest["shards"]]
    assert all(t.column_names == list(ROW_COLUMNS) for t in tables)
    back = pl.concat([pl.from_arrow(t) for t in tables])
    assert back["post_id"].to_list() == rows["post_id"].to_list()
    first = back.row(0, named=True)
    assert first["caption"] == (
        "score_4, rating_safe, hatsune miku, artist 0, long hair, tag 0, smile \\(happy\\)"
    )
    assert first["tags"] == "hatsune miku, artist 0, long hair, tag 0, smile \\(happy\\)"
    assert first["keep_tokens"] == 2 and first["filename"] == f"sub/{0:032x}.jpg"
    assert Path(first["image_path"]).read_bytes() == b"image bytes 0"


def test_jsonl_reads_back_with_json(tmp_path: Path):
    rows = located_rows(tmp_path / "images")
    manifest = _export(rows, "jsonl", tmp_path / "out", tmp_path / "images")
    lines = [
        json.loads(line)
        for s in manifest["shards"]
        for line in (tmp_path / "out" / s["name"]).read_text().splitlines()
    ]
    assert [line["post_id"] for line in lines] == rows["post_id"].to_list()
    assert list(lines[0]) == list(ROW_COLUMNS)
    assert lines[5]["caption"].startswith("score_9, score_8_up, score_7_up, score_6_up")


def test_kohya_metadata_reads_back_with_json(tmp_path: Path):
    rows = located_rows(tmp_path / "images")
    manifest = _export(rows, "kohya_json", tmp_path / "out", tmp_path / "images")
    entries = {}
    for shard in manifest["shards"]:
        entries.update(json.loads((tmp_path / "out" / shard["name"]).read_text()))
    # grouped by caption group, best bucket first: one keep_tokens per shard
    assert sorted(entries) == sorted(rows["image_path"].to_list())
    assert next(iter(entries.values()))["caption"].startswith("score_9, score_8_up")
    first = entries[rows["image_path"][0]]
    assert set(first) == {"caption"}  # sd-scripts would append "tags" to it
    assert first["caption"] == (
        "score_4, rating_safe, hatsune miku, artist 0, long hair, tag 0, smile (happy)"
    )


def test_kohya_sidecars_in_a_folder_per_bucket_beside_linked_images(tmp_path: Path):
    root = tmp_path / "images"
    rows = located_rows(root)
    manifest = _export(rows, "kohya", tmp_path / "out", root, caption_extension=".caption")
    assert manifest["sidecar_root"] == str(tmp_path / "out")
    for row in rows.iter_rows(named=True):
        folder = tmp_path / "out" / f"1_score_{row['bucket']}"
        key = f"{row['site']}_{row['post_id']}"
        caption = (folder / f"{key}.caption").read_text()
        assert caption.startswith(f"score_{row['bucket']}") and caption.endswith("\n")
        image = folder / f"{key}.{row['file_ext']}"
        assert image.is_symlink() and image.read_bytes() == Path(row["image_path"]).read_bytes()
    back = pl.concat([read_rows("kohya", tmp_path / "out" / s["name"]) for s in manifest["shards"]])
    assert back.height == 7 and back["path"][0] == "1_score_9/danbooru_105.caption"


def test_kohya_sidecars_beside_the_images_are_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="sidecar_layout = beside"):
        Target("kohya", tmp_path, image_root=tmp_path, sidecar_layout="beside")


def test_webdataset_reads_back_with_tarfile(tmp_path: Path):
    rows = located_rows(tmp_path / "images")
    manifest = _export(rows, "webdataset", tmp_path / "out", tmp_path / "images")
    with tarfile.open(tmp_path / "out" / manifest["shards"][0]["name"]) as tar:
        names = tar.getnames()
        assert names[:3] == ["e621_100.jpg", "e621_100.txt", "e621_100.json"]
        image = tar.extractfile("e621_100.jpg").read()
        caption = tar.extractfile("e621_100.txt").read().decode()
        meta = json.loads(tar.extractfile("e621_100.json").read())
        assert all(m.mtime == 0 and m.uid == 0 and m.uname == "" for m in tar.getmembers())
    assert image == b"image bytes 0" and caption.startswith("score_4, rating_safe")
    assert meta["bucket"] == 4 and meta["post_id"] == 100 and "caption" not in meta
    assert meta["tags"].startswith("hatsune miku")


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "kohya_json", "webdataset", "kohya"])
def test_the_same_rows_give_byte_identical_shards(tmp_path: Path, fmt: str):
    rows = located_rows(tmp_path / "images")
    first = _export(rows, fmt, tmp_path / "a", tmp_path / "images")
    second = _export(rows, fmt, tmp_path / "b", tmp_path / "images")
    assert first["shards"] == second["shards"]
    for shard in first["shards"]:
        a = (tmp_path / "a" / shard["name"]).read_bytes()
        assert a == (tmp_path / "b" / shard["name"]).read_bytes()
    if fmt in ("kohya", "kohya_json"):
        config = (tmp_path / "a" / "dataset_config.toml").read_text()
        assert config.replace(str(tmp_path / "a"), "") == (
            (tmp_path / "b" / "dataset_config.toml").read_text().replace(str(tmp_path / "b"), "")
        )
    if fmt == "kohya":
        texts = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.txt"))
        assert texts == sorted(
            p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.txt")
        )
