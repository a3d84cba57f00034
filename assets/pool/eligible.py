"""Which posts may enter the rating pool, and why the others may not.

A post is eligible when it is the canonical post of its image, live, mature, an image (not a
video or flash) and the image index knows where its bytes are (a loose file, or a member of a
tar shard). Each excluded post keeps the first
reason that applies, so the asset can say how many were left out and why.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from assets.images.locate import locate
from assets.ingest.current import current_posts
from assets.pool.schema import post_key_expr
from assets.pool.styles import style
from orchestration.settings import PoolSettings

POST_COLUMNS = ("site", "post_id", "md5", "sha512", "file_ext", "tags", "is_deleted")
SCORE_COLUMNS = (
    "site",
    "post_id",
    "image_key",
    "is_canonical",
    "rating",
    "norm_score",
    "provisional",
    "immature",
)
REASONS = ("deleted", "immature", "not an image", "image file missing", "duplicate image")


def _reason(non_image_exts: tuple[str, ...]) -> pl.Expr:
    checks = [
        (pl.col("is_deleted").fill_null(False), "deleted"),
        (pl.col("immature"), "immature"),
        (pl.col("file_ext").is_in(list(non_image_exts)), "not an image"),
        (pl.col("image_path").is_null(), "image file missing"),
        (~pl.col("is_canonical"), "duplicate image"),
    ]
    return pl.coalesce(pl.when(condition).then(pl.lit(text)) for condition, text in checks)


def candidates(
    posts_files: list[Path],
    scores: pl.DataFrame,
    index: pl.DataFrame,
    settings: PoolSettings,
) -> pl.DataFrame:
    """Every current post with its stratum, its image's place (`image_path`, `image_offset`,
    `image_length`, from the image `index`) and `excluded` (null when eligible)."""
    posts = current_posts(posts_files, POST_COLUMNS)
    frame = scores.select(SCORE_COLUMNS).join(posts, on=["site", "post_id"], how="inner")
    found = locate(frame.select("site", "post_id", "md5", "sha512", "image_key"), index)
    frame = frame.join(
        found.select(
            "site", "post_id", image_path="path", image_offset="offset", image_length="length"
        ),
        on=["site", "post_id"],
        how="left",
    )
    decile = (pl.col("norm_score") * 10).floor().clip(0, 9).cast(pl.Int8)
    frame = frame.with_columns(
        post_key=post_key_expr(),
        decile=decile,
        style=style(pl.col("tags"), settings.styles),
    ).with_columns(
        stratum=pl.format("{}/{}/d{}/{}", "site", "rating", "decile", "style"),
        excluded=_reason(settings.non_image_exts),
    )
    return frame.drop("tags", "sha512", "md5", "file_ext")
