"""What to download: the posts whose image no source holds, as a URL list.

The list is what `scoretag images urls` writes for img2dataset and what `scoretag images
fetch` works through. A post is on it when it has a file URL, a hash to check the file
against (md5, or a Philomena post's sha512), an image format the embeddings stage decodes,
and no image yet. The others are counted by why they are left out.
"""

from __future__ import annotations

import polars as pl

from assets.images.fetch import Job

POST_COLUMNS = ("site", "post_id", "md5", "sha512", "file_ext", "file_url")
URL_LIST: dict[str, pl.DataType] = {
    "post_key": pl.String,  # "<site>:<post_id>", saved by img2dataset into each .json sidecar
    "site": pl.String,
    "post_id": pl.Int64,
    "md5": pl.String,
    "sha512": pl.String,  # Philomena posts: the only hash they carry
    "file_ext": pl.String,
    "url": pl.String,
}
IMAGE_FORMATS = ("jpg", "jpeg", "png", "gif", "webp", "bmp", "tif", "tiff", "avif", "jxl")


def _ext() -> pl.Expr:
    """The post's extension, else the URL's (`.../abc.png?x=1` -> png), lowercase."""
    from_url = pl.col("file_url").str.extract(r"\.([A-Za-z0-9]+)(?:[?#].*)?$", 1)
    return pl.coalesce(pl.col("file_ext"), from_url).str.to_lowercase()


def candidates(posts: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, int]]:
    """URL_LIST rows of the posts that can be downloaded and checked; and, by reason, how
    many cannot (`no url`, `no hash`, `not an image format`)."""
    frame = posts.select(*POST_COLUMNS).with_columns(
        file_ext=_ext(),
        md5=pl.col("md5").str.to_lowercase(),
        sha512=pl.col("sha512").str.to_lowercase(),
    )
    reason = (
        pl.when(pl.col("file_url").is_null())
        .then(pl.lit("no url"))
        .when(pl.col("md5").is_null() & pl.col("sha512").is_null())
        .then(pl.lit("no hash"))
        .when(~pl.col("file_ext").is_in(IMAGE_FORMATS) | pl.col("file_ext").is_null())
        .then(pl.lit("not an image format"))
    )
    frame = frame.with_columns(left_out=reason)
    counts = frame["left_out"].drop_nulls().value_counts(sort=True)
    left_out = dict(zip(counts["left_out"].to_list(), counts["count"].to_list(), strict=True))
    kept = frame.filter(pl.col("left_out").is_null()).select(
        post_key=pl.format("{}:{}", "site", "post_id"),
        site="site",
        post_id="post_id",
        md5="md5",
        sha512="sha512",
        file_ext="file_ext",
        url="file_url",
    )
    return kept.cast(URL_LIST).sort("site", "post_id"), left_out


def jobs(urls: pl.DataFrame) -> list[Job]:
    return [
        Job(r["post_key"], r["site"], r["url"], r["md5"], r["sha512"], r["file_ext"])
        for r in urls.iter_rows(named=True)
    ]
