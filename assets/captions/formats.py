"""How one shard of captioned rows is written in each export format, and read back.

- `parquet`, `jsonl`: one row per image, with the columns of ROW_COLUMNS. `filename` is the
  image's path under the image root (SimpleTuner's `filename_column`, with
  `identifier_includes_extension`), `caption` its caption (`caption_column`), `tags` the
  post's own tags as in the caption (a `fallback_caption_column`), `width` and `height` its
  size (`width_column`, `height_column`). `image_path` is absolute; for an image inside a
  tar shard it is the tar's path, and `tar_offset`, `tar_length` give the bytes.
- `kohya_json`: kohya's fine-tuning metadata, `{image path: {"caption": ..., "tags": ...}}`.
- `kohya`: a caption file per image (`caption_extension`), in a tree mirroring the image root
  under the export folder (each image linked beside its caption, so the tree is a
  `train_data_dir`) or beside the images themselves. The shard itself is an index: one line
  per caption file, its path and sha256.
- `webdataset`: tar shards of `<key>.<ext>` (the image), `<key>.txt` (caption) and
  `<key>.json` (the row without the caption), keys `<site>_<post_id>`.

Shards are deterministic: the same rows give the same bytes (no timestamps, fixed tar
headers).
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

FORMATS = ("parquet", "jsonl", "kohya", "kohya_json", "webdataset")
SUFFIX = {
    "parquet": ".parquet",
    "jsonl": ".jsonl",
    "kohya": ".files",
    "kohya_json": ".json",
    "webdataset": ".tar",
}
# Formats whose trainer opens the image file itself: an image inside a tar shard cannot go.
NEED_LOOSE_FILES = ("kohya", "kohya_json")
# Formats that place caption files by the image's path under the image root.
NEED_ROOT = ("kohya",)
ROW_COLUMNS: dict[str, pl.DataType] = {
    "filename": pl.String,
    "image_path": pl.String,
    "tar_offset": pl.Int64,
    "tar_length": pl.Int64,
    "caption": pl.String,
    "tags": pl.String,
    "keep_tokens": pl.Int32,
    "score": pl.Float64,
    "bucket": pl.Int32,
    "rating": pl.String,
    "site": pl.String,
    "post_id": pl.Int64,
    "md5": pl.String,
    "width": pl.Int32,
    "height": pl.Int32,
}
METADATA_COLUMNS = [c for c in ROW_COLUMNS if c not in ("caption", "tar_offset", "tar_length")]


def check_format(name: str) -> str:
    if name not in FORMATS:
        raise ValueError(f"unknown export format {name!r}: choose {', '.join(FORMATS)}")
    return name


def rows_of(captioned: pl.DataFrame) -> pl.DataFrame:
    """The exported columns, in order and with their types."""
    return captioned.select(list(ROW_COLUMNS)).cast(ROW_COLUMNS)


def parquet_bytes(rows: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    # One row group per shard, zstd: a trainer reads a shard whole. Captions are unique per
    # row: dictionaries and min/max statistics only where they help (and cost less).
    pq.write_table(
        rows.to_arrow(),
        buffer,
        compression="zstd",
        row_group_size=max(rows.height, 1),
        use_dictionary=["rating", "site"],
        write_statistics=["bucket", "score", "post_id"],
    )
    return buffer.getvalue()


def jsonl_bytes(rows: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    rows.write_ndjson(buffer)
    return buffer.getvalue()


def _json_string(column: str) -> pl.Expr:
    """The column's values as JSON string literals (quoted and escaped)."""
    encoded = pl.struct(pl.col(column).alias("v")).struct.json_encode()
    return encoded.str.slice(5).str.head(-1)  # '{"v":"…"}' -> '"…"'


def kohya_json_bytes(rows: pl.DataFrame) -> bytes:
    """`{image path: {"caption": ..., "tags": ...}}`, one image per line, in row order."""
    entries = rows.select(
        pl.concat_str(
            pl.lit("  "),
            _json_string("image_path"),
            pl.lit(": "),
            pl.struct("caption", "tags").struct.json_encode(),
        )
    ).to_series()
    body = ",\n".join(entries.to_list())
    return ("{\n" + body + "\n}\n" if body else "{}\n").encode()


@dataclass(frozen=True)
class Sidecar:
    """One caption file of the `kohya` format, and the image linked beside it (mirror tree)."""

    path: Path  # absolute
    text: bytes
    image_link: Path | None  # where the image's link goes, or None (beside the image)
    image: Path


def sidecars(rows: pl.DataFrame, root: Path, extension: str, mirror_root: Path | None) -> list:
    """The caption files of a shard: beside each image (`mirror_root` None), or at the
    image's path under `mirror_root`, its image linked beside it."""
    stems = rows.select(pl.col("filename").str.replace(r"\.[^./]+$", "")).to_series().to_list()
    names, captions, paths = (
        rows["filename"].to_list(),
        rows["caption"].to_list(),
        rows["image_path"],
    )
    base = mirror_root if mirror_root is not None else root
    return [
        Sidecar(
            base / f"{stem}{extension}",
            (caption + "\n").encode(),
            None if mirror_root is None else mirror_root / name,
            Path(image),
        )
        for stem, name, caption, image in zip(stems, names, captions, paths.to_list(), strict=True)
    ]


def sidecar_index(files: list[Sidecar], base: Path) -> bytes:
    """The `kohya` shard: each caption file's path (under `base`) and sha256, one a line."""
    lines = [
        f"{hashlib.sha256(f.text).hexdigest()}  {f.path.relative_to(base).as_posix()}\n"
        for f in files
    ]
    return "".join(lines).encode()


def _member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _image_bytes(path: str, offset: int | None, length: int | None) -> bytes:
    with open(path, "rb") as f:
        if offset is None or offset < 0:
            return f.read()
        f.seek(offset)
        return f.read(length)


def webdataset_members(rows: pl.DataFrame) -> Iterator[tuple[str, bytes]]:
    """(member name, bytes) of each sample: image, caption, metadata. `rows` also has the
    image's `file_ext`."""
    meta = rows.select(
        key=pl.col("site") + "_" + pl.col("post_id").cast(pl.String),
        json=pl.struct(METADATA_COLUMNS).struct.json_encode(),
    )
    columns = ("file_ext", "caption", "image_path", "tar_offset", "tar_length")
    for key, row_json, (ext, caption, path, offset, length) in zip(
        meta["key"], meta["json"], rows.select(columns).iter_rows(), strict=True
    ):
        yield f"{key}.{ext or 'img'}", _image_bytes(path, offset, length)
        yield f"{key}.txt", caption.encode()
        yield f"{key}.json", row_json.encode()


def write_webdataset(rows: pl.DataFrame, target: Path) -> None:
    """Write the tar to `target`, one image at a time."""
    with tarfile.open(target, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in webdataset_members(rows):
            tar.addfile(_member(name, len(data)), io.BytesIO(data))


def read_rows(fmt: str, path: Path) -> pl.DataFrame:
    """A shard read back as a trainer would (pyarrow, json, tarfile): at least `caption`,
    and `bucket` where the format keeps it (null in the kohya formats)."""
    if fmt == "parquet":
        return pl.from_arrow(pq.read_table(path))
    if fmt == "jsonl":
        lines = path.read_text().splitlines()
        return pl.DataFrame([json.loads(line) for line in lines], schema=ROW_COLUMNS)
    if fmt == "kohya_json":
        entries = json.loads(path.read_text())
        return pl.DataFrame(
            {
                "image_path": list(entries),
                "caption": [e["caption"] for e in entries.values()],
                "tags": [e["tags"] for e in entries.values()],
                "bucket": [None] * len(entries),
            },
            schema={
                "image_path": pl.String,
                "caption": pl.String,
                "tags": pl.String,
                "bucket": pl.Int32,
            },
        )
    if fmt == "webdataset":
        return _read_webdataset(path)
    if fmt == "kohya":
        return _read_sidecars(path)
    raise ValueError(check_format(fmt))


def _read_webdataset(path: Path) -> pl.DataFrame:
    """Each sample's caption and metadata, and its image's size (the bytes are not read)."""
    samples: dict[str, dict] = {}
    kept = ("bucket", "rating", "site", "post_id")
    with tarfile.open(path) as tar:
        for member in tar:
            key, _, ext = member.name.partition(".")
            sample = samples.setdefault(key, {"image_bytes": 0})
            if ext == "txt":
                sample["caption"] = tar.extractfile(member).read().decode()
            elif ext == "json":
                meta = json.loads(tar.extractfile(member).read())
                sample.update({k: meta.get(k) for k in kept})
            else:
                sample["image_bytes"] = member.size
    schema = {
        "key": pl.String,
        "image_bytes": pl.Int64,
        "caption": pl.String,
        "bucket": pl.Int32,
        "rating": pl.String,
        "site": pl.String,
        "post_id": pl.Int64,
    }
    return pl.DataFrame([{"key": k, **v} for k, v in samples.items()], schema=schema)


def _read_sidecars(index: Path) -> pl.DataFrame:
    """The caption files an index lists (paths relative to the root recorded beside it)."""
    root = Path(json.loads(index.with_name("manifest.json").read_text())["sidecar_root"])
    paths = [line.split("  ", 1)[1] for line in index.read_text().splitlines() if line]
    captions = [(root / p).read_text().removesuffix("\n") for p in paths]
    return pl.DataFrame(
        {"path": paths, "caption": captions, "bucket": [None] * len(paths)},
        schema={"path": pl.String, "caption": pl.String, "bucket": pl.Int32},
    )
