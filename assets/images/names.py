"""What an image's name says about it: the md5 or sha512 a file or tar member is named by,
the post id of a post-id layout, its extension. Vectorised over whole listings."""

from __future__ import annotations

import polars as pl

# Picture files (never tar shards, sidecars or captions).
IMAGE_EXTS = ("jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff", "avif", "jxl")
MD5 = r"^[0-9a-f]{32}$"
SHA512 = r"^[0-9a-f]{128}$"


def stem_expr(name: pl.Expr) -> pl.Expr:
    """The name without folder and without any extension, lower case."""
    return name.str.extract(r"([^/]*)$").str.extract(r"^([^.]*)").str.to_lowercase()


def ext_expr(name: pl.Expr) -> pl.Expr:
    return name.str.extract(r"\.([^./]+)$").str.to_lowercase()


def keys_expr(stem: pl.Expr, layout: str, site: str) -> list[pl.Expr]:
    """md5, sha512 and post_key a stem gives under `layout`."""
    if layout == "post_id":
        post_key = pl.when(stem.str.contains(r"^[0-9]+$")).then(
            pl.lit(f"{site}:") + stem.str.strip_chars_start("0").replace("", "0")
        )
        return [
            pl.lit(None, pl.String).alias("md5"),
            pl.lit(None, pl.String).alias("sha512"),
            post_key.alias("post_key"),
        ]
    return [
        pl.when(stem.str.contains(MD5)).then(stem).alias("md5"),
        pl.when(stem.str.contains(SHA512)).then(stem).alias("sha512"),
        pl.lit(None, pl.String).alias("post_key"),
    ]
