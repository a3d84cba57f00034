"""The rating pool's table: one row per post to rate, with the round that chose it."""

from __future__ import annotations

from pathlib import Path

import polars as pl

POOL: dict[str, pl.DataType] = {
    "post_key": pl.String,  # "<site>:<post_id>", how labels refer to a post
    "site": pl.String,
    "post_id": pl.Int64,
    "image_key": pl.String,
    "image_path": pl.String,  # absolute: the image file, or the tar shard holding it
    "image_offset": pl.Int64,  # -1: the whole file; else the member's byte offset in the tar
    "image_length": pl.Int64,  # -1 for a whole file
    "rating": pl.String,
    "norm_score": pl.Float64,
    "decile": pl.Int8,  # norm_score decile, 0..9
    "style": pl.String,
    "stratum": pl.String,  # "<site>/<rating>/d<decile>/<style>"
    "round": pl.Int32,  # 1, 2, ...: rows of earlier rounds never change
    "round_kind": pl.String,  # stratified (later: uncertainty)
    "reason": pl.String,  # why this post was chosen
    "selected_at": pl.Datetime("us", "UTC"),
}


def upgraded(pool: pl.DataFrame, image_root: Path) -> pl.DataFrame:
    """A pool written before images could be tar members: its paths were relative to the
    image root, and every image a whole file."""
    if "image_offset" in pool.columns:
        return pool
    path = pl.col("image_path")
    absolute = (
        pl.when(path.str.starts_with("/")).then(path).otherwise(pl.lit(f"{image_root}/") + path)
    )
    return pool.with_columns(
        image_path=absolute, image_offset=pl.lit(-1, pl.Int64), image_length=pl.lit(-1, pl.Int64)
    ).select(list(POOL))


def read_pool(path: Path, image_root: Path) -> pl.DataFrame:
    return upgraded(pl.read_parquet(path), image_root)


def post_key_expr() -> pl.Expr:
    """post_key as a polars expression over `site` and `post_id`."""
    return pl.format("{}:{}", "site", "post_id")
