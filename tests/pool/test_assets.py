"""rating_pool as Dagster materializes it, with its checks."""

import dagster as dg
import polars as pl

from assets.pool.assets import rating_pool
from assets.pool.checks import (
    rating_pool_images_exist,
    rating_pool_size_and_coverage,
    rating_pool_unique,
)
from assets.pool.paths import pool_path
from orchestration.profile import load_profile
from orchestration.resources import ScoretagResource

CHECKS = [rating_pool_unique, rating_pool_size_and_coverage, rating_pool_images_exist]


def _materialize(layout, config=None):
    profile = load_profile("demo", layout.home, config)
    resources = {"scoretag": ScoretagResource.for_profile(profile, profile.config)}
    return dg.materialize(
        [rating_pool, *CHECKS],
        resources=resources,
        selection=[rating_pool.key],
        raise_on_error=True,
    )


def test_the_pool_is_drawn_and_its_checks_pass(scored_home):
    result = _materialize(scored_home)
    (mat,) = result.asset_materializations_for_node("rating_pool")
    meta = {k: v.value for k, v in mat.metadata.items()}
    assert meta["dagster/row_count"] == 420 and meta["added_this_run"] == 420
    assert meta["strata_in_pool"] == meta["strata"]
    assert "image file missing" in meta["excluded"]
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert all(c.passed for c in checks.values()), {n: c.description for n, c in checks.items()}


def test_materializing_again_changes_nothing_and_growing_appends(scored_home, tmp_path):
    _materialize(scored_home)
    first = pl.read_parquet(pool_path(scored_home))
    _materialize(scored_home)
    assert pl.read_parquet(pool_path(scored_home)).equals(first)
    bigger = tmp_path / "bigger.toml"
    bigger.write_text("[pool]\nsize = 470\nmin_per_stratum = 1\n")
    result = _materialize(scored_home, bigger)
    grown = pl.read_parquet(pool_path(scored_home))
    assert grown.height == 470 and grown.head(420).equals(first)
    assert set(grown["round"]) == {1, 2}
    assert all(e.passed for e in result.get_asset_check_evaluations())


def test_a_missing_image_fails_the_blocking_check(scored_home):
    _materialize(scored_home)
    pool = pl.read_parquet(pool_path(scored_home))
    broken = pool.with_columns(
        image_path=pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.lit("gone.jpg"))
        .otherwise("image_path")
    )
    broken.write_parquet(pool_path(scored_home))
    profile = load_profile("demo", scored_home.home)
    resources = {"scoretag": ScoretagResource.for_profile(profile)}
    result = dg.materialize(
        [rating_pool, *CHECKS],
        resources=resources,
        selection=dg.AssetSelection.checks(rating_pool_images_exist),
        raise_on_error=False,
    )
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed and "1 of 420 pooled images are missing" in evaluation.description
