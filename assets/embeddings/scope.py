"""Which images a raw file asks to embed: its posts' images (one per image_key), wherever
their bytes are found, less videos and other files that are not pictures."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from assets.images.keys import with_image_key
from assets.images.locate import LOCATION, locate


@dataclass(frozen=True)
class Scope:
    """The images to embed, and how the raw file's posts came down to them."""

    images: pl.DataFrame  # LOCATION rows
    posts: int
    not_images: int  # posts of videos, flash and archives
    without_file: int  # picture posts whose bytes the image index does not know

    @property
    def requested(self) -> int:
        return self.images.height


def scope(posts: pl.DataFrame, index: pl.DataFrame, non_image_exts: tuple[str, ...]) -> Scope:
    """`posts` has the raw_posts columns site, post_id, md5, sha512 and file_ext; `index` is
    the image index (assets/images)."""
    not_image = pl.col("file_ext").is_in(list(non_image_exts)).fill_null(False)
    keyed = with_image_key(posts.select("site", "post_id", "md5", "sha512", "file_ext"))
    pictures = keyed.filter(~not_image)
    found = locate(pictures.drop("file_ext"), index)
    located = found.unique("image_key", keep="first", maintain_order=True)
    images = located.filter(~not_image)
    picture_keys = pictures["image_key"].n_unique()
    return Scope(
        images=images.select(list(LOCATION)),
        posts=posts.height,
        not_images=keyed.height - pictures.height,
        without_file=picture_keys - located.height,
    )
