"""The common schema of raw_posts, and of the side tables for records it does not load."""

from __future__ import annotations

import polars as pl

TAGS = pl.List(pl.String)
UTC = pl.Datetime("us", "UTC")

POSTS: dict[str, pl.DataType] = {
    "site": pl.String,
    "post_id": pl.Int64,
    "md5": pl.String,  # lowercase hex; null where the site gives none (Philomena)
    "sha512": pl.String,  # Philomena's file hash
    "created_at": UTC,
    "updated_at": UTC,
    "rating": pl.String,  # g, s, q or e
    "rating_raw": pl.String,  # what the site said
    "score": pl.Int64,  # the site's net score
    "up_votes": pl.Int64,  # >= 0; null where the site has no votes (Gelbooru)
    "down_votes": pl.Int64,  # >= 0, whatever sign the site stores them with
    "favorites": pl.Int64,
    "width": pl.Int64,
    "height": pl.Int64,
    "file_ext": pl.String,
    "file_size": pl.Int64,
    "file_url": pl.String,  # the original file: the site's URL, or derived (see urls.py)
    "sample_url": pl.String,  # a smaller rendition, as the site gives it; else null
    "preview_url": pl.String,  # the thumbnail, as the site gives it; else null
    "url_derived": pl.Boolean,  # file_url was derived from the site's layout; null: no URL
    "tags": TAGS,  # every tag of the post
    "artist_tags": TAGS,  # category lists: null where the site gives no categories
    "character_tags": TAGS,
    "copyright_tags": TAGS,
    "species_tags": TAGS,
    "meta_tags": TAGS,
    "source": pl.String,
    "parent_id": pl.Int64,
    "is_deleted": pl.Boolean,
    "is_pending": pl.Boolean,
    "source_file": pl.String,
    "record": pl.Int64,  # line or record number in the source file, from 1
    "ingested_at": UTC,
}

REQUIRED = ("site", "post_id", "created_at", "rating")

QUARANTINE: dict[str, pl.DataType] = {
    "site": pl.String,
    "source_file": pl.String,
    "record": pl.Int64,
    "reason": pl.String,
    "raw": pl.String,
    "ingested_at": UTC,
}

SKIPPED: dict[str, pl.DataType] = {
    "site": pl.String,
    "source_file": pl.String,
    "record": pl.Int64,
    "post_id": pl.Int64,
    "reason": pl.String,
    "ingested_at": UTC,
}

RATINGS = ("g", "s", "q", "e")


def conform(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """The frame's columns in schema order and types; absent columns become nulls."""
    return frame.select(
        pl.col(name).cast(dtype) if name in frame.columns else pl.lit(None, dtype).alias(name)
        for name, dtype in schema.items()
    )
