"""Where each image's bytes are: a file under the image root named by its md5 (or matched by
sha512), a member of a tar shard in webdataset layout, or a path an index file gives.

Tar shards: `*.tar` files anywhere under the image root. A member belongs to the image its
key names, where the key (file name without extensions) is an md5 or a sha512; otherwise the
member's `<key>.json` sidecar may give `md5` or `sha512` (as img2dataset writes them). Each
shard's member table is read once and cached by path, size and modification time.
"""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path

import polars as pl

from assets.pool.images import IMAGE_EXTS, image_files
from orchestration.atomic import write_parquet

LOCATION: dict[str, pl.DataType] = {
    "image_key": pl.String,
    "path": pl.String,  # absolute
    "offset": pl.Int64,  # -1: the whole file; else a byte range inside a tar shard
    "length": pl.Int64,
    "file_ext": pl.String,
}
MEMBERS: dict[str, pl.DataType] = {
    "tar": pl.String,
    "tar_size": pl.Int64,
    "tar_mtime_ns": pl.Int64,
    "md5": pl.String,
    "sha512": pl.String,
    "offset": pl.Int64,
    "length": pl.Int64,
    "file_ext": pl.String,
}
_MD5 = re.compile(r"^[0-9a-f]{32}$")
_SHA512 = re.compile(r"^[0-9a-f]{128}$")


def _hash_of(key: str) -> tuple[str | None, str | None]:
    key = key.lower()
    return (key if _MD5.match(key) else None, key if _SHA512.match(key) else None)


def _sidecar_hashes(tar: tarfile.TarFile, member: tarfile.TarInfo) -> tuple[str | None, ...]:
    try:
        meta = json.loads(tar.extractfile(member).read())
    except (ValueError, AttributeError, OSError):
        return None, None
    if not isinstance(meta, dict):
        return None, None
    md5, sha = str(meta.get("md5") or "").lower(), str(meta.get("sha512") or "").lower()
    return (md5 if _MD5.match(md5) else None, sha if _SHA512.match(sha) else None)


def _scan_tar(path: Path) -> list[tuple]:
    """(member name, md5, sha512, offset, length, ext) of each image member of a tar shard."""
    images: dict[str, tuple[str, int, int, str]] = {}
    hashes: dict[str, tuple[str | None, str | None]] = {}
    with tarfile.open(path, "r:") as tar:
        for member in tar:
            if not member.isfile():
                continue
            folder, _, base = member.name.rpartition("/")
            key, _, exts = base.partition(".")
            key_path, ext = f"{folder}/{key}", exts.rpartition(".")[2].lower()
            if ext in IMAGE_EXTS:
                images[key_path] = (member.name, member.offset_data, member.size, ext)
                hashes.setdefault(key_path, _hash_of(key))
            elif ext == "json" and not any(_hash_of(key)):
                hashes[key_path] = _sidecar_hashes(tar, member)
    return [
        (name, *hashes.get(k, (None, None)), offset, size, ext)
        for k, (name, offset, size, ext) in images.items()
    ]


def read_members(path: Path) -> list[tuple]:
    """(md5, sha512, offset, length, ext) of each image member of one tar shard."""
    return [member[1:] for member in _scan_tar(path)]


def tar_members(root: Path, cache: Path) -> pl.DataFrame:
    """Image members of every tar shard under `root` (`path` is the shard's), from the cache
    where a shard is unchanged."""
    shards = sorted(p for p in root.rglob("*.tar") if p.is_file()) if root.is_dir() else []
    known = pl.read_parquet(cache) if cache.is_file() else pl.DataFrame(schema=MEMBERS)
    stamp = ["tar", "tar_size", "tar_mtime_ns"]
    stats = [(str(p), st.st_size, st.st_mtime_ns) for p in shards for st in [p.stat()]]
    current = pl.DataFrame(stats, schema={k: MEMBERS[k] for k in stamp}, orient="row")
    # One join finds the shards whose cached members still hold (same path, size and time).
    cached = known.join(current, on=stamp, how="semi")
    fresh = current.join(cached.select(stamp).unique(), on=stamp, how="anti")
    rows = [(*shard, *m) for shard in fresh.iter_rows() for m in read_members(Path(shard[0]))]
    read = pl.DataFrame(rows, schema=MEMBERS, orient="row")
    members = pl.concat([cached, read]).sort("tar", maintain_order=True)
    if read.height or members.height != known.height:
        write_parquet(members, cache)
    return members.rename({"tar": "path"})


def index_files(index: Path, root: Path) -> pl.DataFrame:
    """An index file's rows as (md5, sha512, image_key, path): a `path` column and at least
    one of `md5`, `sha512`, `image_key`."""
    if not index.is_file():
        raise FileNotFoundError(f"image index not found: {index}")
    frame = pl.read_parquet(index) if index.suffix == ".parquet" else pl.read_csv(index)
    keys = [c for c in ("md5", "sha512", "image_key") if c in frame.columns]
    if "path" not in frame.columns or not keys:
        raise ValueError(
            f"image index {index} needs a `path` column and one of md5, sha512, image_key "
            f"(it has {', '.join(frame.columns)})"
        )
    absolute = pl.col("path").cast(pl.String)
    absolute = (
        pl.when(absolute.str.starts_with("/"))
        .then(absolute)
        .otherwise(pl.lit(f"{root}/") + absolute)
    )
    return frame.select(
        *[
            pl.col(c).cast(pl.String).str.to_lowercase()
            if c in frame.columns
            else pl.lit(None, pl.String).alias(c)
            for c in ("md5", "sha512", "image_key")
        ],
        path=absolute,
        offset=pl.lit(-1, pl.Int64),
        length=pl.lit(-1, pl.Int64),
        file_ext=pl.col("path").cast(pl.String).str.extract(r"\.([^./]+)$").str.to_lowercase(),
    )


def _match(wanted: pl.DataFrame, table: pl.DataFrame) -> pl.DataFrame:
    """Rows of `wanted` (image_key, md5, sha512) found in `table` by any of those keys."""
    found = []
    for key in ("md5", "sha512", "image_key"):
        if key not in table.columns:
            continue
        by_key = table.filter(pl.col(key).is_not_null()).unique(key, keep="first")
        found.append(
            wanted.filter(pl.col(key).is_not_null())
            .join(by_key.select(key, *list(LOCATION)[1:]), on=key)
            .select(list(LOCATION))
        )
    return pl.concat(found).unique("image_key", keep="first", maintain_order=True)


def locate(
    posts: pl.DataFrame, root: Path, cache_dir: Path, index: Path | None = None
) -> pl.DataFrame:
    """Where the bytes of each image of `posts` (site, post_id, md5, sha512, image_key) are:
    one LOCATION row per image_key found, looking in loose files, then tar shards, then the
    index."""
    loose = image_files(posts, root, cache_dir / "sha512_cache.parquet")
    located = (
        posts.join(loose.filter(pl.col("image_path").is_not_null()), on=["site", "post_id"])
        .select(
            "image_key",
            path=pl.lit(f"{root}/") + pl.col("image_path"),
            offset=pl.lit(-1, pl.Int64),
            length=pl.lit(-1, pl.Int64),
            file_ext=pl.col("image_path").str.extract(r"\.([^./]+)$").str.to_lowercase(),
        )
        .unique("image_key", keep="first", maintain_order=True)
    )
    wanted = posts.select("image_key", "md5", "sha512").unique("image_key", keep="first")
    elsewhere = [lambda: tar_members(root, cache_dir / "tar_members.parquet")]
    if index is not None:
        elsewhere.append(lambda: index_files(index, root))
    for table in elsewhere:
        wanted = wanted.join(located.select("image_key"), on="image_key", how="anti")
        if wanted.height:
            located = pl.concat([located, _match(wanted, table())])
    return located.cast(LOCATION)


def _tar_images(path: Path) -> pl.DataFrame:
    schema = {"member": pl.String, **{k: MEMBERS[k] for k in list(MEMBERS)[3:]}}
    members = pl.DataFrame(_scan_tar(path), schema=schema, orient="row")
    return members.select(
        image_key=pl.coalesce("md5", "sha512"),
        path=pl.lit(str(path)),
        offset="offset",
        length="length",
        file_ext="file_ext",
        source=pl.lit(f"{path}/") + pl.col("member"),
    )


def _loose_images(files: list[Path]) -> pl.DataFrame:
    frame = pl.DataFrame({"path": [str(p) for p in files]}, schema={"path": pl.String})
    stem = pl.col("path").str.extract(r"([^/]+)$").str.extract(r"^([^.]*)").str.to_lowercase()
    return frame.select(
        image_key=pl.when(stem.str.contains(r"^([0-9a-f]{32}|[0-9a-f]{128})$")).then(stem),
        path="path",
        offset=pl.lit(-1, pl.Int64),
        length=pl.lit(-1, pl.Int64),
        file_ext=pl.col("path").str.extract(r"\.([^./]+)$").str.to_lowercase(),
        source="path",
    )


_GIVEN_EXTS = {*IMAGE_EXTS, "tar"}


def given_images(paths: list[Path]) -> pl.DataFrame:
    """The images a user names: image files, folders (their image files and tar shards, found
    recursively) and tar shards (their image members). LOCATION rows plus `source` (the file,
    or `<shard>/<member>`), in the order given, each folder sorted. `image_key` is the md5 or
    sha512 that names a file (or a member, or its json sidecar), else the source."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = (p for p in path.rglob("*") if p.is_file())
            files += sorted(p for p in found if p.suffix.lower().lstrip(".") in _GIVEN_EXTS)
        else:
            files.append(path)
    frames, loose = [], []
    for path in files:
        if path.suffix.lower() == ".tar":
            frames.append(_loose_images(loose))
            frames.append(_tar_images(path.resolve()))
            loose = []
        else:
            loose.append(path.resolve())
    frames.append(_loose_images(loose))
    located = pl.concat(frames)
    return located.with_columns(image_key=pl.coalesce("image_key", "source")).cast(
        {**LOCATION, "source": pl.String}
    )
