"""Data-quality checks of image_files and image_index."""

import hashlib

import dagster as dg
import polars as pl

from assets.images.assets import image_files, image_index
from assets.images.download import STORED, last_stored_path
from assets.images.find import load_index
from orchestration import quality
from orchestration.atomic import read_parquet_or_empty
from orchestration.resources import ScoretagResource


@dg.asset_check(asset=image_index, blocking=True)
def image_index_entries(scoretag: ScoretagResource) -> dg.AssetCheckResult:
    """GX suite: every entry has its path, extension and at least one key (md5, sha512, post
    key or an index's image_key); tar members have a byte range; no image is listed twice
    (path and member)."""
    import great_expectations as gx

    e = gx.expectations
    profile = scoretag.load()
    entries = load_index(profile.layout, profile.settings)
    # Exact counts over the whole index, one row: GX sees no copy of a million entries.
    keyed = pl.any_horizontal(pl.col("md5", "sha512", "post_key", "image_key").is_not_null())
    ranged = (pl.col("kind") != "tar") | ((pl.col("offset") >= 0) & (pl.col("length") >= 0))
    place = pl.struct("source", "path", pl.col("member").fill_null(""))
    facts = entries.select(
        no_path=pl.col("path").is_null().sum(),
        no_extension=pl.col("file_ext").is_null().sum(),
        no_key=(~keyed).sum(),
        no_byte_range=(~ranged).sum(),
        listed_twice=pl.len() - place.n_unique(),
    ).cast(pl.Int64)
    outcome = quality.validate(
        facts,
        [e.ExpectColumnValuesToBeInSet(column=c, value_set=[0]) for c in facts.columns],
        "image_index",
    )
    return quality.check_result([outcome], {"entries": entries.height})


@dg.asset_check(asset=image_index)
def image_index_not_empty(scoretag: ScoretagResource) -> dg.AssetCheckResult:
    """The sources hold at least one image (a wrong `[images] sources` path finds none)."""
    profile = scoretag.load()
    entries = load_index(profile.layout, profile.settings)
    return dg.AssetCheckResult(
        passed=entries.height > 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{entries.height} images in the index",
        metadata={"images": entries.height},
    )


REHASHED = 200  # files of the last download hashed again by image_files_match_posts


def _hash_of(path: str, name: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, name).hexdigest()
    except OSError:  # gone since
        return None


@dg.asset_check(asset=image_files, blocking=True)
def image_files_match_posts(scoretag: ScoretagResource) -> dg.AssetCheckResult:
    """GX suite: the files the last download stored (up to 200 of them, drawn at random) are
    still there and hash to the md5 (Philomena: sha512) their post gives."""
    import great_expectations as gx

    path = last_stored_path(scoretag.load().layout)
    stored = read_parquet_or_empty(path, STORED)
    drawn = quality.sample(stored.lazy(), REHASHED)
    wrong = sum(
        _hash_of(path, "md5" if len(expected) == 32 else "sha512") != expected
        for path, expected in drawn.select("path", "hash").iter_rows()
    )
    facts = pl.DataFrame({"not_the_post": [wrong]}, schema={"not_the_post": pl.Int64})
    e = gx.expectations.ExpectColumnValuesToBeInSet(column="not_the_post", value_set=[0])
    outcome = quality.validate(facts, [e], "image_files")
    return quality.check_result([outcome], {"stored": stored.height, "rehashed": drawn.height})
