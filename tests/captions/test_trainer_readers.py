"""Each export read back through its trainer's own reader, not the project's: Hugging Face
`datasets` and `webdataset` (installed with the dev extra), and SimpleTuner's parquet
backend through the rules of its source, as it cannot be installed here. SimpleTuner
(bghira/SimpleTuner at bc8e6ab7):

- documentation/DATALOADER.md:1219-1281, "Parquet caption strategy / JSON Lines datasets":
  the entry's fields (`id`, `type`, `instance_data_dir`, `caption_strategy: parquet`,
  `metadata_backend: parquet`, the `parquet` block), `identifier_includes_extension`;
- simpletuner/helpers/data_backend/config/validators.py:107-115 and 187-189: parquet
  captions need the parquet metadata backend; a non-empty id;
- simpletuner/helpers/data_backend/factory.py:920-966 (`configure_parquet_database`): the
  file at `parquet.path` exists and is read with pandas (`read_json(lines=True)` for
  `.jsonl`), it has the caption and filename columns, and `check_column_values`
  (factory.py:256-289) refuses nulls and empty strings in the filename column;
- simpletuner/helpers/data_backend/local.py:127-167 (`list_files`): the images are the files
  under `instance_data_dir` (os.walk, following links) with an image extension;
- simpletuner/helpers/metadata/backends/parquet.py:141 and 451-470 (`_process_for_bucket`):
  the table is indexed by the filename column, and each listed file is looked up by its
  path under `instance_data_dir` (with its extension); a file not found is skipped
  (`metadata_missing`); 563-568: an image's size is the row's width and height, the file
  not opened; training_sample.py:662 applies the EXIF orientation when it is opened.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import datasets
import pandas as pd
import polars as pl
import pytest
import webdataset
from PIL import Image, ImageOps

from assets.captions.calibration import Policy
from assets.captions.captions import CaptionRules
from assets.captions.export import Images, Request, export_catalog
from assets.captions.paths import calibration_dir
from assets.captions.selection import IMAGE_IN_TAR, IMAGE_NOT_FOUND, Filter, Located
from assets.captions.shards import Target, write_shards
from assets.captions.simpletuner import CONFIG
from assets.captions.sizes import IMAGE_UNREADABLE, read_sizes
from tests.captions.conftest import _post, sha512_table
from tests.images.helpers import index_of

RULES = CaptionRules(style="v6", min_bucket=4)
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _picture(fmt: str, size: tuple[int, int], orientation: int | None = None) -> bytes:
    buffer = io.BytesIO()
    extra = {}
    if orientation:
        exif = Image.Exif()
        exif[0x0112] = orientation
        extra["exif"] = exif.tobytes()
    Image.new("RGB", size, (200, 40, 90)).save(buffer, fmt, **extra)
    return buffer.getvalue()


# (name under the root, bytes, format, size as displayed); the first sits inside a tar
PICTURES = [
    ("pack.tar", _picture("PNG", (10, 8)), "png", (10, 8)),
    ("a.jpg", _picture("JPEG", (30, 20)), "jpg", (30, 20)),
    ("sub/b.png", _picture("PNG", (25, 40)), "png", (25, 40)),
    ("c.webp", _picture("WEBP", (16, 16)), "webp", (16, 16)),
    ("d.gif", _picture("GIF", (12, 9)), "gif", (12, 9)),
    ("turned.jpg", _picture("JPEG", (30, 20), orientation=6), "jpg", (20, 30)),
    ("broken.png", b"<html>not an image</html>", "png", None),
]


def _located(root: Path) -> Located:
    """Posts whose images are of every format, one inside a tar, one EXIF-turned, one not an
    image; the booru's sizes (1x1) are wrong on purpose. Post 101 has no md5 (Philomena's)."""
    rows = []
    for i, (name, data, ext, _) in enumerate(PICTURES):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        offset = length = None
        if name.endswith(".tar"):
            with tarfile.open(path, "w") as tar:
                info = tarfile.TarInfo("inside.png")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            with tarfile.open(path) as tar:
                member = tar.getmember("inside.png")
                offset, length = member.offset_data, member.size
        else:
            path.write_bytes(data)
        rows.append(
            {
                "site": "danbooru",
                "post_id": 100 + i,
                "md5": None if i == 1 else f"{i:032x}",
                "rating": "gsqe"[i % 4],
                "bucket": 4 + i % 6,
                "score": 0.4 + i / 20,
                "width": 1,
                "height": 1,
                "tags": ["long_hair", f"tag_{i}"],
                "character_tags": [],
                "copyright_tags": [],
                "artist_tags": [f"artist_{i}"],
                "species_tags": None,
                "meta_tags": None,
                "filename": None if offset is not None else name,
                "image_path": str(path),
                "file_ext": ext,
                "tar_offset": offset,
                "tar_length": length,
            }
        )
    frame = pl.DataFrame(rows, schema_overrides={"species_tags": pl.List(pl.String)})
    return Located(frame, {})


def _export(tmp_path: Path, fmt: str) -> tuple[list[Path], dict]:
    located = read_sizes(_located(tmp_path / "images"))
    assert located.dropped == {IMAGE_UNREADABLE: 1}
    out = tmp_path / fmt
    manifest = write_shards(located.rows, RULES, Target(fmt, out, 3), {}).manifest
    assert manifest["rows"] == 6 and len(manifest["shards"]) == 2
    return [out / s["name"] for s in manifest["shards"]], manifest


def _expected() -> dict[str, tuple[str, tuple[int, int]]]:
    """key -> (format, size) of every image that can be read."""
    return {
        f"danbooru_{100 + i}": (ext, size)
        for i, (_, _, ext, size) in enumerate(PICTURES)
        if size is not None
    }


def _load(kind: str, files: list[Path], tmp_path: Path) -> datasets.Dataset:
    return datasets.load_dataset(
        kind,
        data_files={"train": [str(f) for f in files]},
        split="train",
        cache_dir=str(tmp_path / "hf-cache"),
    )


def test_sizes_are_read_from_the_files(tmp_path: Path):
    located = read_sizes(_located(tmp_path / "images"))
    paths, sizes = located.rows["image_path"], located.rows.select("width", "height").rows()
    sizes = dict(zip(paths, sizes, strict=True))
    root = tmp_path / "images"
    assert sizes[str(root / "turned.jpg")] == (20, 30)  # as displayed
    assert sizes[str(root / "pack.tar")] == (10, 8)  # from inside the tar
    assert str(root / "broken.png") not in sizes and located.dropped == {IMAGE_UNREADABLE: 1}


def test_webdataset_loads_with_hugging_face_datasets(tmp_path: Path):
    files, manifest = _export(tmp_path, "webdataset")
    ds = _load("webdataset", files, tmp_path)
    assert isinstance(ds.features["jpg"], datasets.Image)
    assert ds.num_rows == manifest["rows"]
    expected = _expected()
    for row in ds:
        ext, size = expected.pop(row["__key__"])
        assert isinstance(row["jpg"], Image.Image) and row["jpg"].size == size
        assert row["txt"].startswith("score_")
        meta = row["json"]
        assert meta["file_ext"] == ext and (meta["width"], meta["height"]) == size
    assert expected == {}


def test_webdataset_yields_every_sample_with_webdataset(tmp_path: Path):
    files, _ = _export(tmp_path, "webdataset")
    expected = _expected()
    stream = webdataset.WebDataset([str(f) for f in files], shardshuffle=False).decode("pil")
    for sample in stream:
        ext, size = expected.pop(sample["__key__"])
        image = ImageOps.exif_transpose(sample["jpg"])
        assert image.size == size and sample["txt"].startswith("score_")
        assert sample["json"]["file_ext"] == ext
    assert expected == {}


def test_hf_export_loads_with_hugging_face_datasets(tmp_path: Path):
    files, manifest = _export(tmp_path, "hf")
    ds = _load("parquet", files, tmp_path)
    assert isinstance(ds.features["image"], datasets.Image)
    assert ds.num_rows == manifest["rows"]
    expected = _expected()
    for row in ds:
        ext, size = expected.pop(f"{row['site']}_{row['post_id']}")
        assert isinstance(row["image"], Image.Image) and row["image"].size == size
        assert row["caption"].startswith("score_") and row["file_ext"] == ext
        assert (row["width"], row["height"]) == size
    assert expected == {}
    # what push_to_hub uploads: the rows as the features encode them, images as bytes
    table = ds.with_format("arrow")[:]
    assert table.schema.field("image").type == datasets.Image().pa_type


def test_the_same_rows_give_byte_identical_hf_shards(tmp_path: Path):
    first = _export(tmp_path / "a", "hf")[1]
    second = _export(tmp_path / "b", "hf")[1]
    assert first["shards"] == second["shards"]


# -- SimpleTuner, by the rules of its source (module docstring) ---------------------------


def _simpletuner_images(entry: dict) -> list[str]:
    """local.py list_files: files under instance_data_dir with an image extension."""
    extensions = tuple(
        ext.lower() for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN
    )
    found = []
    for folder, _, names in os.walk(entry["instance_data_dir"], followlinks=True):
        found += [os.path.join(os.path.abspath(folder), n) for n in names]
    return [f for f in found if f.lower().endswith(extensions)]


def simpletuner_load(entry: dict) -> dict[str, tuple[str, int, int]]:
    """What SimpleTuner's parquet backend makes of one entry: identifier -> (caption, width,
    height) of each image it trains on."""
    assert entry["id"] and entry["type"] == "local"
    assert entry.get("dataset_type", "image") == "image"
    assert entry["caption_strategy"] == "parquet" and entry["metadata_backend"] == "parquet"
    assert entry["resolution_type"] in ("pixel", "area", "pixel_area")
    config = entry["parquet"]
    path = config["path"]
    assert os.path.exists(path)
    with open(path, "rb") as f:
        data = io.BytesIO(f.read())
    df = pd.read_json(data, lines=True) if path.endswith(".jsonl") else pd.read_parquet(data)
    filenames, captions = df[config["filename_column"]], df[config["caption_column"]]
    assert not filenames.isnull().any() and not (filenames == "").any()
    assert not captions.isnull().any() and not (captions == "").any()
    assert config["identifier_includes_extension"] is True
    table = df.set_index(config["filename_column"])
    loaded = {}
    root = entry["instance_data_dir"]
    for image in _simpletuner_images(entry):
        identifier = image.replace(root, "").removeprefix("/")
        if identifier not in table.index:
            continue  # metadata_missing: another shard's, or an image not exported
        row = table.loc[identifier]
        width, height = row[config["width_column"]], row[config["height_column"]]
        loaded[identifier] = (row[config["caption_column"]], int(width), int(height))
    return loaded


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_simpletuner_loads_the_export_as_configured(home, fmt: str):
    md5 = _post("danbooru", 5)["md5"]  # its image goes into a tar
    (home.images / f"{md5}.png").rename(home.images / "inside.png")
    with tarfile.open(home.images / "shard.tar", "w") as tar:
        tar.add(home.images / "inside.png", arcname=f"{md5}.png")
    (home.images / "inside.png").unlink()
    (home.images / f"{_post('e621', 7)['md5']}.png").write_bytes(b"<html>")  # not an image
    where = Filter()
    target = Target(fmt, home.home / "out" / fmt, 4, image_root=home.images)
    rules = CaptionRules(min_bucket=where.min_bucket)
    request = Request(target, rules, where, Policy(name="absolute"), calibration_dir(home))
    images = Images(home.images, lambda: index_of(home.home, home.images), sha512=sha512_table)
    result = export_catalog(home.catalog, request, images, True, NOW)
    assert result.dropped == {IMAGE_NOT_FOUND: 1, IMAGE_IN_TAR: 1, IMAGE_UNREADABLE: 1}
    entries = json.loads((target.out / CONFIG).read_text())
    assert len(entries) == len(result.outcome.manifest["shards"]) == 4
    assert len({e["id"] for e in entries}) == len(entries)
    loaded: dict[str, tuple] = {}
    for entry in entries:
        for identifier, row in simpletuner_load(entry).items():
            assert identifier not in loaded  # each image trained on once
            loaded[identifier] = row
    assert len(loaded) == result.rows == 16
    for identifier, (caption, width, height) in loaded.items():
        assert caption.startswith("score_")
        with Image.open(home.images / identifier) as img:
            assert ImageOps.exif_transpose(img).size == (width, height) == (4, 3)


@pytest.mark.parametrize("style", ["animagine", "noobai"])
def test_other_vocabularies_load_with_hugging_face_datasets(tmp_path: Path, style: str):
    rules = CaptionRules(style=style, min_bucket=4)
    rows = read_sizes(_located(tmp_path / "images")).rows.with_columns(
        tag_quality=pl.lit("masterpiece"),
        tag_aesthetic=pl.lit(None, pl.String),  # no tag of the family: nothing written
        tag_period=pl.lit("newest"),
    )
    out = tmp_path / "hf"
    manifest = write_shards(rows, rules, Target("hf", out, 3), {}).manifest
    ds = _load("parquet", [out / s["name"] for s in manifest["shards"]], tmp_path)
    assert ds.num_rows == manifest["rows"] == 6
    ratings = set(rules.ratings.values())
    for row in ds:
        tags = row["caption"].split(", ")
        if style == "animagine":  # the rating in front (keep_tokens), the families last
            assert row["caption"].endswith(", masterpiece, newest")
            assert ", ".join(tags[: row["keep_tokens"]]) in ratings
        else:  # noobai: quality, period, then the rating, all in front
            assert tags[:2] == ["masterpiece", "newest"]
            assert ", ".join(tags[2 : row["keep_tokens"]]) in ratings
