"""Which posts an export holds, and where their images are.

The catalog gives the posts (sql/captions/select.sql): scored under the active head, in a
bucket at or above the minimum, of the chosen ratings and sites, not deleted, one post per
image, ordered by added_seq (when the catalog first held the post with its image: new posts
come last), then site and post id. An incremental export selects only the posts of some
added_seq ranges (sql/captions/select_ranges.sql). Their images are then found in the image
index (assets/images), as every stage finds them. A post is left out, with its reason
counted, when its image is nowhere to be found, sits inside a tar shard where the format
needs a loose file, or lies outside the image root where the format mirrors its tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from assets.captions.buckets import check_bucket
from assets.captions.formats import KOHYA_IMAGE_EXTS, NEED_LOOSE_FILES, NEED_ROOT
from assets.catalog.statements import statement
from assets.images.locate import LOCATION, locate
from orchestration.settings import RATINGS
from orchestration.storage import SITES

IMAGE_NOT_FOUND = "image_not_found"
IMAGE_IN_TAR = "image_in_tar"
IMAGE_OUTSIDE_ROOT = "image_outside_root"
IMAGE_TYPE_UNREAD = "image_type_sd_scripts_skips"


@dataclass(frozen=True)
class Filter:
    """The posts an export selects. Deleted posts never are."""

    min_bucket: int = 1
    ratings: tuple[str, ...] = RATINGS
    sites: tuple[str, ...] = ()  # empty: every site

    def __post_init__(self) -> None:
        check_bucket(self.min_bucket, "the minimum bucket")
        unknown = set(self.ratings) - set(RATINGS)
        if unknown or not self.ratings:
            raise ValueError(
                f"ratings must be some of {', '.join(RATINGS)}, not {', '.join(self.ratings)}"
            )
        if set(self.sites) - set(SITES):
            # a typo would select nothing, silently
            raise ValueError(
                f"sites must be some of {', '.join(SITES)}, not {', '.join(self.sites)}"
            )

    def params(self, head: str) -> dict:
        return {
            "head": head,
            "min_bucket": self.min_bucket,
            "ratings": sorted(self.ratings),
            "sites": sorted(self.sites),
        }

    @classmethod
    def described(cls, description: dict) -> Filter:
        """The filter a manifest describes."""
        sites = description["sites"]
        return cls(
            min_bucket=description["min_bucket"],
            ratings=tuple(description["ratings"]),
            sites=() if sites == "all" else tuple(sites),
        )

    def describe(self) -> dict:
        return {
            "min_bucket": self.min_bucket,
            "ratings": sorted(self.ratings),
            "sites": sorted(self.sites) or "all",
            "deleted": "excluded",
            "posts_per_image": 1,
        }


def select_posts(
    con: duckdb.DuckDBPyConnection,
    head: str,
    where: Filter,
    ranges: Sequence[tuple[int, int]] | None = None,
) -> pl.DataFrame:
    """The selected posts with their tags, score, bucket and added_seq, in export order;
    with `ranges` ((lo, hi) of added_seq, inclusive), only those whose added_seq lies in one."""
    if ranges is None:
        return con.execute(statement("captions/select"), where.params(head)).pl()
    params = {
        **where.params(head),
        "los": [int(lo) for lo, _ in ranges],
        "his": [int(hi) for _, hi in ranges],
    }
    return con.execute(statement("captions/select_ranges"), params).pl()


def selection_buckets(con: duckdb.DuckDBPyConnection, head: str, where: Filter) -> dict[int, int]:
    """Selected posts per bucket, counted in the catalog."""
    rows = con.execute(statement("captions/selection_buckets"), where.params(head)).fetchall()
    return {int(bucket): int(n) for bucket, n in rows}


LEFT_OUT: dict[str, pl.DataType] = {"added_seq": pl.Int64, "reason": pl.String}


@dataclass(frozen=True)
class Located:
    """The selected posts whose images were found, and how many were left out, by reason;
    `left_out` has the added_seq and reason of each post left out (an incremental export
    counts them per shard)."""

    rows: pl.DataFrame
    dropped: dict[str, int]
    left_out: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=LEFT_OUT))


def left_out_rows(rows: pl.DataFrame, reason: str) -> pl.DataFrame:
    """LEFT_OUT rows for `rows` (posts left out for `reason`)."""
    seq = rows["added_seq"] if "added_seq" in rows.columns else pl.Series([None] * rows.height)
    return pl.DataFrame(
        {"added_seq": seq.cast(pl.Int64), "reason": [reason] * rows.height}, schema=LEFT_OUT
    )


def with_images(
    posts: pl.DataFrame,
    fmt: str,
    root: Path,
    index: pl.DataFrame,
    sha512: pl.DataFrame | None = None,
) -> Located:
    """`posts` with `image_path`, `filename` (under `root`, for loose files), `tar_offset`,
    `tar_length` and `file_ext` of the image, from the image `index`. `sha512` (site,
    post_id, sha512) finds the images of posts that have no md5 (Philomena's)."""
    keyed = posts.select("site", "post_id", "md5", "image_key").join(
        sha512 if sha512 is not None else _no_sha512(), on=["site", "post_id"], how="left"
    )
    found = locate(keyed, index) if posts.height else _no_location()
    found = found.unique("image_key", keep="first", maintain_order=True)
    prefix = f"{root}/"
    rows = posts.drop("file_ext", strict=False).join(
        found.select(
            "image_key",
            "file_ext",
            image_path="path",
            tar_offset=pl.when(pl.col("offset") >= 0).then("offset"),
            tar_length=pl.when(pl.col("offset") >= 0).then("length"),
        ),
        on="image_key",
        how="left",
        maintain_order="left",
    )
    loose_under_root = pl.col("tar_offset").is_null() & pl.col("image_path").str.starts_with(prefix)
    rows = rows.with_columns(
        filename=pl.when(loose_under_root).then(pl.col("image_path").str.strip_prefix(prefix))
    )
    dropped: dict[str, int] = {}
    gone: list[pl.DataFrame] = []

    def leave_out(which: pl.Series, reason: str) -> pl.DataFrame:
        dropped[reason] = int(which.sum())
        gone.append(left_out_rows(rows.filter(which), reason))
        return rows.filter(~which)

    rows = leave_out(rows["image_path"].is_null(), IMAGE_NOT_FOUND)
    if fmt in NEED_LOOSE_FILES:
        rows = leave_out(rows["tar_offset"].is_not_null(), IMAGE_IN_TAR)
    if fmt in NEED_ROOT:
        # Caption files mirror, or sit beside, the image root's tree: an image an index
        # file places elsewhere has no place in it.
        rows = leave_out(rows["filename"].is_null(), IMAGE_OUTSIDE_ROOT)
    if fmt == "kohya":
        # sd-scripts lists a folder's images by extension: a gif or tiff would sit there
        # unread, its caption unused (formats.KOHYA_IMAGE_EXTS).
        ext = rows["image_path"].str.extract(r"\.([^./]+)$").str.to_lowercase()
        rows = leave_out(~ext.is_in(list(KOHYA_IMAGE_EXTS)).fill_null(False), IMAGE_TYPE_UNREAD)
    counts = {reason: n for reason, n in dropped.items() if n}
    return Located(rows, counts, pl.concat(gone))


def _no_sha512() -> pl.DataFrame:
    return pl.DataFrame(schema={"site": pl.String, "post_id": pl.Int64, "sha512": pl.String})


def _no_location() -> pl.DataFrame:
    return pl.DataFrame(schema=LOCATION)
