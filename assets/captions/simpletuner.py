"""SimpleTuner's dataloader config for a parquet or jsonl export: `multidatabackend.json` in
the export folder, one image backend per shard (SimpleTuner's parquet backend reads one
file), that `--data_backend_config` takes as it is.

What SimpleTuner requires, from its source (bghira/SimpleTuner at bc8e6ab7):
- documentation/DATALOADER.md, "Parquet caption strategy / JSON Lines datasets": `id`,
  `type`, `instance_data_dir`, `caption_strategy: parquet`, `metadata_backend: parquet` and
  a `parquet` block (`path`, `filename_column`, `caption_column`, `fallback_caption_column`,
  `width_column`, `height_column`, `identifier_includes_extension`).
- simpletuner/helpers/data_backend/factory.py, `check_column_values` and
  `configure_parquet_database`: the file at `parquet.path` must exist, and the filename
  column may hold no null and no empty string (nor the caption column, unless a fallback
  column is set).
- simpletuner/helpers/metadata/backends/parquet.py, `_process_for_bucket`: each file found
  under `instance_data_dir` is looked up by its path relative to that folder (with its
  extension, `identifier_includes_extension`); the row's width and height are taken as the
  image's size without opening it. Files the table does not list are skipped
  (`metadata_missing`).

So every row of these formats names a file under the image root (images inside tar shards
and outside the root are left out: selection.py), and its size is read from the file
(sizes.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from orchestration.atomic import write_bytes

CONFIG = "multidatabackend.json"
FORMATS = ("parquet", "jsonl")
COLUMNS = {
    "filename_column": "filename",
    "caption_column": "caption",
    "fallback_caption_column": "tags",
    "width_column": "width",
    "height_column": "height",
    "identifier_includes_extension": True,
}
# Training settings SimpleTuner needs a value for; the user tunes them.
TRAINING = {"resolution": 1024, "resolution_type": "pixel_area", "repeats": 0}


def manifest_entry(image_root: Path) -> dict:
    """The manifest's `simpletuner` block: where the config is, and what each entry holds."""
    return {
        "config": CONFIG,
        "type": "local",
        "instance_data_dir": str(image_root),
        "caption_strategy": "parquet",
        "metadata_backend": "parquet",
        "parquet": COLUMNS,
    }


def backends(manifest: dict, out: Path, image_root: Path) -> list[dict]:
    """One image backend per shard, its id stable across exports (the folder's name and the
    shard's index: SimpleTuner ties its caches to the id)."""
    entries = []
    for shard in manifest["shards"]:
        index = shard["name"].split("-")[1]
        entries.append(
            {
                "id": f"scoretag-{out.name}-{index}",
                "type": "local",
                "dataset_type": "image",
                "instance_data_dir": str(image_root),
                "caption_strategy": "parquet",
                "metadata_backend": "parquet",
                "parquet": {"path": str(out / shard["name"]), **COLUMNS},
                **TRAINING,
            }
        )
    return entries


def write_config(out: Path, manifest: dict, image_root: Path) -> Path:
    """Write `multidatabackend.json` beside the manifest (atomically, only when it changed)."""
    text = json.dumps(backends(manifest, out, image_root), indent=2) + "\n"
    return write_bytes(out / CONFIG, text.encode())
