"""Where each post's image is: the URLs the site gave, kept as they were, and where a file
leaves the original's URL out (dumps, exports, hidden files), the canonical one derived from
the site's public layout, with `url_derived` set so that a user can tell the two apart.

Adapters hand over `file_url`, `sample_url` and `preview_url` as the site wrote them (absent
where the format has none) and, for Gelbooru, its `directory` and `image` fields as
`url_directory` and `url_image`. Everything here runs on whole columns.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

URL_COLUMNS = ("file_url", "sample_url", "preview_url")
# What a site-relative URL ("/data/...", old Danbooru pages) is relative to.
ORIGINS = {
    "danbooru": "https://danbooru.donmai.us",
    "e621": "https://e621.net",
    "derpibooru": "https://derpibooru.org",
    "gelbooru": "https://gelbooru.com",
}
# Columns the layouts read, in these types (a page where a field is always null gives a
# column of no type), added as nulls where a batch lacks them.
INPUTS = {
    "md5": pl.String,
    "file_ext": pl.String,
    "post_id": pl.Int64,
    "created_at": pl.Datetime("us", "UTC"),
    "url_directory": pl.String,
    "url_image": pl.String,
}


def _sharded(md5: pl.Expr) -> pl.Expr:
    """`ab/cd/abcd...`: the two-level folders Danbooru, e621 and Gelbooru store files in."""
    return pl.format("{}/{}/{}", md5.str.slice(0, 2), md5.str.slice(2, 2), md5)


def danbooru_url() -> pl.Expr:
    return pl.format(
        "https://cdn.donmai.us/original/{}.{}", _sharded(pl.col("md5")), pl.col("file_ext")
    )


def e621_url() -> pl.Expr:
    return pl.format(
        "https://static1.e621.net/data/{}.{}", _sharded(pl.col("md5")), pl.col("file_ext")
    )


def gelbooru_url() -> pl.Expr:
    """From the post's own `directory` and `image` where it has them, else from its md5."""
    fields = pl.format(
        "https://img3.gelbooru.com/images/{}/{}",
        pl.col("url_directory").str.strip_chars("/"),
        pl.col("url_image"),
    )
    by_md5 = pl.format(
        "https://img3.gelbooru.com/images/{}.{}", _sharded(pl.col("md5")), pl.col("file_ext")
    )
    return pl.coalesce(fields, by_md5)


def derpibooru_url() -> pl.Expr:
    """Philomena files an image under the (UTC) day it was uploaded, by id and format."""
    made = pl.col("created_at")
    return pl.format(
        "https://derpicdn.net/img/view/{}/{}/{}/{}.{}",
        made.dt.year(),
        made.dt.month(),
        made.dt.day(),
        pl.col("post_id"),
        pl.col("file_ext"),
    )


LAYOUTS: dict[str, Callable[[], pl.Expr]] = {
    "danbooru": danbooru_url,
    "e621": e621_url,
    "gelbooru": gelbooru_url,
    "derpibooru": derpibooru_url,
}


def absolute(url: pl.Expr, origin: str) -> pl.Expr:
    """A URL as the site wrote it, made absolute: protocol-relative ones take https, and
    site-relative ones the site's origin. Empty text (Gelbooru's "no sample") and anything
    that is not a web address are null."""
    text = url.cast(pl.String).str.strip_chars()
    return (
        pl.when(text.str.contains(r"^https?://"))
        .then(text)
        .when(text.str.starts_with("//"))
        .then(pl.lit("https:") + text)
        .when(text.str.starts_with("/"))
        .then(pl.lit(origin) + text)
    )


def with_urls(posts: pl.DataFrame, site: str) -> pl.DataFrame:
    """`posts` with file_url (the site's, else derived: null where the layout's inputs are
    missing), sample_url, preview_url and url_derived."""
    posts = posts.with_columns(
        pl.col(name).cast(dtype) if name in posts else pl.lit(None, dtype).alias(name)
        for name, dtype in INPUTS.items()
    )
    given = {
        name: absolute(pl.col(name), ORIGINS[site]) if name in posts else pl.lit(None, pl.String)
        for name in URL_COLUMNS
    }
    derived = LAYOUTS[site]()
    return posts.with_columns(
        file_url=pl.coalesce(given["file_url"], derived),
        sample_url=given["sample_url"],
        preview_url=given["preview_url"],
        url_derived=pl.when(given["file_url"].is_not_null())
        .then(False)
        .when(derived.is_not_null())
        .then(True),
    )
