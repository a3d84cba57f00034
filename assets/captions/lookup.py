"""The image index's entries for some posts only: what an incremental export reads instead of
the whole index (assets/images/index.py `load`, about 2 s a million entries).

The index keeps each source's entries in parquet parts grouped by folder (tar shard, index
file), not by key, so no part can be skipped: every part's key columns (md5, sha512,
post_key, image_key) are read and matched with the posts' keys, and only the entries that
match are read whole. They come out in the order `load` gives every entry (sources in order,
loose files before tar members, then path and offset), so locate() picks the same entry for
each post as it would from the whole index.
"""

from __future__ import annotations

import polars as pl

from assets.images import index
from assets.images.find import load_index, sources
from assets.images.parts import Parts
from assets.images.paths import index_dir
from orchestration.settings import Settings
from orchestration.storage import Layout

KEYS = ("md5", "sha512", "post_key", "image_key")


def keys_of(posts: pl.DataFrame, sha512: pl.DataFrame | None) -> dict[str, list[str]]:
    """The keys the posts' images may be found by (locate.MATCHED_BY), lower case where
    locate compares them so."""
    frame = posts.select("site", "post_id", "md5", "image_key")
    if sha512 is not None:
        frame = frame.join(
            sha512.select("site", "post_id", "sha512"), on=["site", "post_id"], how="left"
        )
    keys = {
        "md5": frame["md5"].drop_nulls().str.to_lowercase(),
        "post_key": (frame["site"] + ":" + frame["post_id"].cast(pl.String)).drop_nulls(),
        "image_key": frame["image_key"].drop_nulls(),
        "sha512": frame["sha512"].drop_nulls().str.to_lowercase()
        if "sha512" in frame.columns
        else pl.Series([], dtype=pl.String),
    }
    return {k: v.unique().to_list() for k, v in keys.items()}


def entries_for(layout: Layout, settings: Settings, keys: dict[str, list[str]]) -> pl.DataFrame:
    """The index's entries that hold an image by one of `keys`, in load()'s order."""
    folder = index_dir(layout)
    if not index.exists(folder):
        return _matching(load_index(layout, settings).lazy(), keys).collect()
    found = sources(layout, settings)
    hashed_path = folder / "sha512.parquet"
    hashed = pl.read_parquet(hashed_path) if hashed_path.is_file() else None
    extra_paths: list[str] = []
    if hashed is not None and keys["sha512"]:
        # entries whose sha512 only the hashed list gives: matched by their path
        extra_paths = hashed.filter(pl.col("sha512").is_in(keys["sha512"]))["path"].to_list()
    frames = []
    for rank, source in enumerate(found):
        files = Parts(index._source_dir(folder, source), index.ENTRY).files()
        if not files:
            continue
        wanted = _matching(pl.scan_parquet(files), keys)
        if extra_paths:
            wanted = pl.concat(
                [wanted, pl.scan_parquet(files).filter(pl.col("path").is_in(extra_paths))]
            ).unique(maintain_order=True)
        frames.append(wanted.with_columns(rank=pl.lit(rank, pl.Int32)))
    if not frames:
        return pl.DataFrame(schema=index.ENTRY)
    entries = pl.concat(frames).collect()
    kind = pl.col("kind").replace_strict({"file": 0, "tar": 1, "index": 2}, return_dtype=pl.Int8)
    entries = entries.sort(pl.col("rank"), kind, "path", "offset").drop("rank")
    if hashed is not None:
        known = hashed.rename({"sha512": "hashed_sha512"})
        entries = entries.join(known, on=["path", "offset"], how="left", maintain_order="left")
        entries = entries.with_columns(sha512=pl.coalesce("sha512", "hashed_sha512")).drop(
            "hashed_sha512"
        )
    return entries


def _matching(entries: pl.LazyFrame, keys: dict[str, list[str]]) -> pl.LazyFrame:
    return entries.filter(
        pl.any_horizontal(pl.col(k).is_in(keys[k]) for k in KEYS if keys[k]).fill_null(False)
        if any(keys[k] for k in KEYS)
        else pl.lit(False)
    )
