"""How one shard of captioned rows is written in each export format, and read back.

- `parquet`, `jsonl`: one row per image, with the columns of ROW_COLUMNS. `filename` is the
  image's path under the image root (SimpleTuner's `filename_column`, with
  `identifier_includes_extension`), `caption` its caption (`caption_column`), `tags` the
  post's own tags as in the caption (a `fallback_caption_column`), `width` and `height` its
  size read from the file (`width_column`, `height_column`; sizes.py). `image_path` is
  absolute. SimpleTuner refuses a null filename, so images inside tar shards or outside the
  image root are left out (`tar_offset`, `tar_length` stay null).
- `kohya_json`: kohya's fine-tuning metadata, `{image path: {"caption": ...}}`: the caption
  alone, no `tags` (sd-scripts appends `tags` to `caption`, so both would repeat every tag).
  Each shard holds the posts of one caption group (same `keep_tokens`): one subset each in
  `dataset_config.toml`.
- `kohya`: a folder per caption group (score bucket, and whether the site has a source tag)
  under the export folder, `1_score_<bucket>[_source]`, holding each image (linked or
  copied) as `<site>_<post_id>.<ext>` beside its caption file (`caption_extension`): one
  subset of `dataset_config.toml` each, since sd-scripts reads a folder non-recursively with
  one `keep_tokens`. The shard itself is an index: one line per caption file, its path and
  sha256.
- `webdataset`: tar shards of `<key>.jpg` (the image's own bytes, whatever its format:
  one field name for every sample, as `datasets` requires; PIL reads the format from the
  bytes), `<key>.txt` (caption) and `<key>.json` (the row without the caption, the real
  format in `file_ext`, no nulls), keys `<site>_<post_id>` (no dots).
- `hf`: parquet shards for Hugging Face `datasets`: an `image` column of the `Image` feature
  (the image's bytes), the caption and the metadata, the features in the schema's
  `huggingface` metadata, so `load_dataset("parquet", ...)` decodes the images.

The kohya formats write the caption as sd-scripts and OneTrainer read it (`kohya_caption`):
`keep_tokens_separator` between the fixed tags and the rest where one is set (sd-scripts
removes it), and parentheses plain (they tokenize the text as written). The other formats
never hold the separator.

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
import pyarrow as pa
import pyarrow.parquet as pq

# `preference-pairs` (preference.py) writes pairs, not one row per post: only `scoretag export`
# makes it, through preference_export.py.
FORMATS = ("parquet", "jsonl", "kohya", "kohya_json", "webdataset", "hf", "preference-pairs")
SUFFIX = {
    "parquet": ".parquet",
    "jsonl": ".jsonl",
    "kohya": ".files",
    "kohya_json": ".json",
    "webdataset": ".tar",
    "hf": ".parquet",
    "preference-pairs": ".parquet",
}
# Formats whose trainer opens the image file itself: an image inside a tar shard cannot go.
NEED_LOOSE_FILES = ("kohya", "kohya_json", "parquet", "jsonl")
# Formats that place caption files by the image's path under the image root.
# parquet, jsonl: SimpleTuner finds a row by the image's path under its instance_data_dir.
NEED_ROOT = ("kohya", "parquet", "jsonl")
# sd-scripts' formats: rows grouped by caption group, a dataset_config.toml beside them.
KOHYA_FORMATS = ("kohya", "kohya_json")
# The image extensions sd-scripts finds in a folder without optional plugins (IMAGE_EXTENSIONS,
# library/train_util.py line 104 at 48d368f); OneTrainer reads them all too
# (SUPPORTED_IMAGE_EXTENSIONS, modules/util/path_util.py line 38).
KOHYA_IMAGE_EXTS = ("png", "jpg", "jpeg", "webp", "bmp")
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


def kohya_caption(captioned: pl.DataFrame, separator: str) -> pl.Series:
    """The caption as sd-scripts and OneTrainer read it, from `prefix` (the fixed tags),
    `tags` and `suffix` (the vocabulary's trailing tags): `separator`
    (`keep_tokens_separator`) between the fixed tags and the rest where set, else ", ";
    parentheses plain, as both tokenize the caption as written (no prompt syntax)."""
    joiner = f" {separator} " if separator else ", "
    tags = (
        pl.col("tags")
        .str.replace_all(r"\(", "(", literal=True)
        .str.replace_all(r"\)", ")", literal=True)
    )
    suffix = pl.col("suffix") if "suffix" in captioned.columns else pl.lit(None, pl.String)
    rest = pl.concat_str(
        [pl.when(tags != "").then(tags), suffix], separator=", ", ignore_nulls=True
    )
    text = pl.concat_str(
        [pl.col("prefix"), pl.when(rest != "").then(rest)], separator=joiner, ignore_nulls=True
    )
    return captioned.select(text.alias("caption")).to_series()


def kohya_group(source_sites: list[str], keep_tokens: pl.Expr | None = None) -> pl.Expr:
    """The folder (and subset) of each row: `1_score_<bucket>`, with `_source` for the sites
    given a source tag (one more fixed tag), and `_keep<n>` where the vocabulary's fixed tags
    vary otherwise (`keep_tokens`: families cut by value, ratings of several tags). `1_` is
    the repeats that `--train_data_dir` reads from a folder's name (config_util.py,
    generate_dreambooth_subsets_config_by_subdirs)."""
    keep = pl.lit("") if keep_tokens is None else pl.lit("_keep") + keep_tokens.cast(pl.String)
    return pl.concat_str(
        pl.lit("1_score_"),
        pl.col("bucket").cast(pl.String),
        pl.when(pl.col("site").is_in(source_sites)).then(pl.lit("_source")).otherwise(pl.lit("")),
        keep,
    )


def kohya_json_bytes(rows: pl.DataFrame) -> bytes:
    """`{image path: {"caption": ...}}`, one image per line, in row order."""
    entries = rows.select(
        pl.concat_str(
            pl.lit("  "),
            _json_string("image_path"),
            pl.lit(": "),
            pl.struct("caption").struct.json_encode(),
        )
    ).to_series()
    body = ",\n".join(entries.to_list())
    return ("{\n" + body + "\n}\n" if body else "{}\n").encode()


@dataclass(frozen=True)
class Sidecar:
    """One caption file of the `kohya` format, and where its image goes beside it."""

    path: Path  # absolute
    text: bytes
    image_link: Path  # where the image is linked or copied
    image: Path


def sidecar_paths(rows: pl.DataFrame, out: Path, extension: str) -> tuple[list, list]:
    """Where each row's caption file and image go (absolute paths, as strings):
    `<out>/<folder>/<site>_<post_id>` with the caption extension, and with the image's own
    extension (lower case). `rows` has `folder`."""
    base = pl.concat_str(
        pl.lit(f"{out}/"), pl.col("folder"), pl.lit("/"), "site", pl.lit("_"), "post_id"
    )
    ext = pl.col("image_path").str.extract(r"\.([^./]+)$").str.to_lowercase()
    named = rows.select(caption=base + pl.lit(extension), image=base + pl.lit(".") + ext)
    return named["caption"].to_list(), named["image"].to_list()


def sidecars(rows: pl.DataFrame, out: Path, extension: str) -> list[Sidecar]:
    """The caption files of a shard and their images, in the caption groups' folders."""
    captions, images = sidecar_paths(rows, out, extension)
    texts, paths = rows["caption"].to_list(), rows["image_path"].to_list()
    return [
        Sidecar(Path(path), (text + "\n").encode(), Path(link), Path(image))
        for path, text, link, image in zip(captions, texts, images, paths, strict=True)
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


# Every sample's image member is `<key>.jpg`, whatever the image's format: `datasets` wants
# the same fields in every sample, and it and `webdataset` decode by the bytes (PIL).
WEBDATASET_IMAGE = "jpg"


def sample_key() -> pl.Expr:
    """`<site>_<post_id>`: webdataset splits a member's name at its first dot."""
    key = pl.col("site") + "_" + pl.col("post_id").cast(pl.String)
    return key.str.replace_all(".", "_", literal=True)


def _webdataset_meta() -> list[pl.Expr]:
    """The `.json` fields: no nulls (strings empty where unknown), so that every sample has
    the same fields of the same types, as `datasets` infers them from the first samples."""
    columns = [*METADATA_COLUMNS, "file_ext"]
    return [
        pl.col(c).cast(pl.String).fill_null("")
        if ROW_COLUMNS.get(c, pl.String) == pl.String
        else pl.col(c)
        for c in columns
    ]


def webdataset_members(rows: pl.DataFrame) -> Iterator[tuple[str, bytes]]:
    """(member name, bytes) of each sample: image, caption, metadata. `rows` also has the
    image's `file_ext`."""
    meta = rows.select(key=sample_key(), json=pl.struct(_webdataset_meta()).struct.json_encode())
    columns = ("caption", "image_path", "tar_offset", "tar_length")
    for key, row_json, (caption, path, offset, length) in zip(
        meta["key"], meta["json"], rows.select(columns).iter_rows(), strict=True
    ):
        yield f"{key}.{WEBDATASET_IMAGE}", _image_bytes(path, offset, length)
        yield f"{key}.txt", caption.encode()
        yield f"{key}.json", row_json.encode()


def write_webdataset(rows: pl.DataFrame, target: Path) -> None:
    """Write the tar to `target`, one image at a time."""
    with tarfile.open(target, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in webdataset_members(rows):
            tar.addfile(_member(name, len(data)), io.BytesIO(data))


HF_IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
HF_VALUES: dict[str, tuple[pl.DataType, pa.DataType, str]] = {
    "caption": (pl.String, pa.string(), "string"),
    "tags": (pl.String, pa.string(), "string"),
    "keep_tokens": (pl.Int32, pa.int32(), "int32"),
    "score": (pl.Float64, pa.float64(), "float64"),
    "bucket": (pl.Int32, pa.int32(), "int32"),
    "rating": (pl.String, pa.string(), "string"),
    "site": (pl.String, pa.string(), "string"),
    "post_id": (pl.Int64, pa.int64(), "int64"),
    "md5": (pl.String, pa.string(), "string"),
    "width": (pl.Int32, pa.int32(), "int32"),
    "height": (pl.Int32, pa.int32(), "int32"),
    "file_ext": (pl.String, pa.string(), "string"),
}
# The features as `datasets` writes them into a parquet schema's metadata, and reads them.
HF_FEATURES = {
    "image": {"_type": "Image"},
    **{c: {"dtype": dtype, "_type": "Value"} for c, (_, _, dtype) in HF_VALUES.items()},
}
HF_SCHEMA = pa.schema(
    [("image", HF_IMAGE), *((c, t) for c, (_, t, _) in HF_VALUES.items())],
    metadata={"huggingface": json.dumps({"info": {"features": HF_FEATURES}})},
)
HF_ROW_GROUP = 100  # images per row group, as the Hub advises for image datasets


def write_hf(rows: pl.DataFrame, target: Path) -> None:
    """Write the `hf` parquet shard to `target`, a row group at a time."""
    with pq.ParquetWriter(target, HF_SCHEMA, compression="zstd") as writer:
        for start in range(0, rows.height, HF_ROW_GROUP):
            part = rows.slice(start, HF_ROW_GROUP)
            names = part.select(sample_key() + "." + pl.col("file_ext").fill_null("img"))
            where = part.select("image_path", "tar_offset", "tar_length").rows()
            images = [
                {"bytes": _image_bytes(*place), "path": name}
                for place, name in zip(where, names.to_series(), strict=True)
            ]
            values = part.select(pl.col(c).cast(t) for c, (t, _, _) in HF_VALUES.items())
            table = values.to_arrow().add_column(0, "image", pa.array(images, HF_IMAGE))
            writer.write_table(table.cast(HF_SCHEMA))


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
                "tags": [e.get("tags") for e in entries.values()],
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
    if fmt == "hf":
        return pl.from_arrow(pq.read_table(path, columns=list(HF_VALUES)))
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
