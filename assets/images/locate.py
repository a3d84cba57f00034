"""Where the bytes of each post's image are, read from the image index (never a scan).

`locate(posts, index)` is what every stage calls: posts (site, post_id, md5, sha512, and
optionally image_key) in, one LOCATED row per post found out. A post is matched by its md5,
then its sha512, then its post key (`<site>:<post_id>`: post-id tars, saved sidecars), then
an index file's image_key; where several entries hold the image, the first source wins, and
in a source a loose file before a tar member.
"""

from __future__ import annotations

import polars as pl

from assets.images.keys import with_image_key

LOCATION: dict[str, pl.DataType] = {
    "image_key": pl.String,
    "path": pl.String,  # absolute: the file, or the tar shard holding it
    "offset": pl.Int64,  # -1: the whole file; else the member's byte offset in the tar
    "length": pl.Int64,  # -1 for a whole file
    "file_ext": pl.String,
}
LOCATED: dict[str, pl.DataType] = {"site": pl.String, "post_id": pl.Int64, **LOCATION}
MATCHED_BY = ("md5", "sha512", "post_key", "image_key")


def _keyed(posts: pl.DataFrame) -> pl.DataFrame:
    frame = posts.select(
        "site",
        pl.col("post_id").cast(pl.Int64),
        *[
            pl.col(c).cast(pl.String).str.to_lowercase()
            if c in posts.columns
            else pl.lit(None, pl.String).alias(c)
            for c in ("md5", "sha512")
        ],
        *(["image_key"] if "image_key" in posts.columns else []),
    )
    if "image_key" not in frame.columns:
        frame = with_image_key(frame)
    return frame.with_columns(post_key=pl.col("site") + ":" + pl.col("post_id").cast(pl.String))


def locate(posts: pl.DataFrame, index: pl.DataFrame) -> pl.DataFrame:
    """LOCATED rows (site, post_id + LOCATION) for the posts whose image `index` holds."""
    wanted = _keyed(posts)
    found = []
    where = ["path", "offset", "length", "file_ext"]
    for key in MATCHED_BY:
        if wanted.height == 0:
            break
        table = index.filter(pl.col(key).is_not_null()).unique(key, keep="first")
        hits = wanted.filter(pl.col(key).is_not_null()).join(
            table.select(key, *where), on=key, maintain_order="left"
        )
        found.append(hits.select(list(LOCATED)))
        wanted = wanted.join(hits.select("site", "post_id"), on=["site", "post_id"], how="anti")
    located = pl.concat(found) if found else pl.DataFrame(schema=LOCATED)
    return located.cast(LOCATED)


def unclaimed_sha512s(posts: pl.DataFrame, index: pl.DataFrame) -> pl.DataFrame:
    """Entries worth hashing for the posts known only by a sha512 that no entry has: those
    named by an md5 that no post claims, without a sha512 yet (path, offset, length)."""
    wanted = posts.filter(pl.col("md5").is_null() & pl.col("sha512").is_not_null())
    missing = wanted.join(index.filter(pl.col("sha512").is_not_null()), on="sha512", how="anti")
    if missing.height == 0:
        return index.clear().select("path", "offset", "length")
    claimed = posts["md5"].drop_nulls().implode()
    return index.filter(
        pl.col("md5").is_not_null() & pl.col("sha512").is_null() & ~pl.col("md5").is_in(claimed)
    ).select("path", "offset", "length")
