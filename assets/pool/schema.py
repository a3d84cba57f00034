"""The rating pool's table: one row per post to rate, with the round that chose it."""

from __future__ import annotations

import polars as pl

POOL: dict[str, pl.DataType] = {
    "post_key": pl.String,  # "<site>:<post_id>", how labels refer to a post
    "site": pl.String,
    "post_id": pl.Int64,
    "image_key": pl.String,
    "image_path": pl.String,  # the file under the image root, relative to it
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


def post_key_expr() -> pl.Expr:
    """post_key as a polars expression over `site` and `post_id`."""
    return pl.format("{}:{}", "site", "post_id")
