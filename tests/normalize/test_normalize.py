from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from assets.ingest.current import current_posts
from assets.normalize.normalize import SCHEMA, normalize_posts
from assets.normalize.popularity import wilson_lower_bound
from orchestration.settings import NormalizeSettings
from scoretag.demo import scores

SNAPSHOT = datetime(2026, 11, 1, tzinfo=UTC)
SETTINGS = NormalizeSettings()


def make_posts(
    rng,
    n,
    site="danbooru",
    rating="e",
    years=(2015, 2024),
    age_days=None,
    scale=1.0,
    votes=True,
    **extra,
) -> pl.DataFrame:
    """Posts whose scores follow the published Danbooru shape for their rating."""
    u = rng.random(n)
    name = scores.RATING_NAMES[rating]
    net = np.rint(
        scores.quantile(scores.SCORE_PERCENTILES[name], tuple(range(5, 100, 5)), u) * scale
    ).astype(np.int64)
    if age_days is None:
        start, end = (datetime(y, 1, 1, tzinfo=UTC).timestamp() for y in years)
        created = start + rng.random(n) * (end - start)
    else:
        created = np.full(n, (SNAPSHOT - timedelta(days=age_days)).timestamp())
    down = rng.poisson(1, n)
    return pl.DataFrame(
        {
            "site": site,
            "post_id": np.arange(n) + extra.pop("first_id", 1),
            "md5": [f"{i:032x}" for i in rng.integers(0, 2**62, n)],
            "sha512": None,
            "created_at": pl.Series((created * 1e6).astype(np.int64)).cast(
                pl.Datetime("us", "UTC")
            ),
            "updated_at": SNAPSHOT,
            "rating": rating,
            "score": net,
            "up_votes": (net + down) if votes else None,
            "down_votes": down if votes else None,
            "favorites": (net * 2) if votes else None,
            "is_deleted": False,
            "source_file": f"{site}/dump.json",
            **extra,
        },
        schema_overrides={
            "sha512": pl.String,
            "up_votes": pl.Int64,
            "down_votes": pl.Int64,
            "favorites": pl.Int64,
        },
    )


def normalize(frame: pl.DataFrame, settings: NormalizeSettings = SETTINGS) -> pl.DataFrame:
    snapshots = pl.DataFrame({"source_file": frame["source_file"].unique()}).with_columns(
        snapshot_at=pl.lit(SNAPSHOT)
    )
    return normalize_posts(frame, snapshots, settings)


def ks_uniform(values: np.ndarray) -> float:
    values = np.sort(values)
    n = len(values)
    return float(np.max(np.abs(np.arange(1, n + 1) / n - values)))


def test_output_has_the_schema():
    out = normalize(make_posts(np.random.default_rng(0), 300))
    assert out.schema == pl.Schema(SCHEMA)


def test_reference_posts_are_uniform_within_their_cohort():
    rng = np.random.default_rng(1)
    out = normalize(make_posts(rng, 20_000, years=(2020, 2021)))
    assert out["cohort"].unique().to_list() == ["2020-01-01"]
    assert out["norm_score"].min() > 0 and out["norm_score"].max() < 1
    assert ks_uniform(out["norm_score"].to_numpy()) < 0.03
    assert out["norm_score"].mean() == pytest.approx(0.5, abs=0.01)


def test_sites_and_ratings_are_placed_on_one_scale():
    rng = np.random.default_rng(2)
    explicit_e621 = make_posts(rng, 5000, site="e621", rating="e", scale=1.6)
    general_danbooru = make_posts(rng, 5000, site="danbooru", rating="g")
    out = normalize(pl.concat([explicit_e621, general_danbooru]))
    raw = (
        pl.concat([explicit_e621, general_danbooru]).group_by("site").agg(pl.col("score").median())
    )
    assert dict(raw.iter_rows())["e621"] > 4 * dict(raw.iter_rows())["danbooru"]
    p90 = out.group_by("site").agg(pl.col("norm_score").quantile(0.9))
    for _, value in p90.iter_rows():
        assert value == pytest.approx(0.9, abs=0.02)


def test_upload_periods_are_separate_cohorts():
    rng = np.random.default_rng(3)
    old = make_posts(rng, 3000, years=(2012, 2013), scale=0.5)
    new = make_posts(rng, 3000, years=(2024, 2025), scale=2.0, first_id=10_000)
    out = normalize(pl.concat([old, new]))
    for (_, cohort), group in out.group_by("site", "cohort"):
        assert group["norm_score"].mean() == pytest.approx(0.5, abs=0.02), cohort
    assert set(out["cohort"]) == {"2012-01-01", "2024-01-01"}


def test_young_posts_do_not_move_the_reference_and_are_provisional():
    rng = np.random.default_rng(4)
    mature = make_posts(rng, 2000, years=(2020, 2021))
    young = make_posts(rng, 500, years=(2020, 2021), age_days=3, first_id=100_000)
    zero = pl.lit(0, pl.Int64)
    young = young.with_columns(
        created_at=pl.lit(SNAPSHOT - timedelta(days=3)),
        score=zero,
        up_votes=zero,
        down_votes=zero,
        favorites=zero,
    )
    alone = normalize(mature).select("post_id", "norm_score")
    together = normalize(pl.concat([mature, young]))
    same = together.join(alone, on="post_id", suffix="_alone")
    assert (same["norm_score"] == same["norm_score_alone"]).all()
    fresh = together.filter(pl.col("post_id") >= 100_000)
    assert fresh["immature"].all() and fresh["provisional"].all()
    assert not fresh["in_reference"].any()
    assert together.filter(pl.col("post_id") < 100_000)["provisional"].sum() == 0


def test_deleted_posts_are_flagged_and_left_out_of_the_reference():
    rng = np.random.default_rng(5)
    posts = make_posts(rng, 1000).with_columns(is_deleted=pl.col("post_id") % 10 == 0)
    out = normalize(posts)
    deleted = out.filter(pl.col("is_deleted"))
    assert deleted.height == 100 and not deleted["in_reference"].any()
    assert deleted["provisional"].all() and deleted["norm_score"].is_not_null().all()


def test_small_periods_are_pooled():
    rng = np.random.default_rng(6)
    big = make_posts(rng, 400, years=(2020, 2021))
    small = make_posts(rng, 20, years=(2010, 2011), first_id=5000)
    smaller = make_posts(rng, 15, years=(2012, 2013), first_id=6000)
    out = normalize(pl.concat([big, small, smaller]), NormalizeSettings(min_cohort_size=50))
    cohorts = dict(out.group_by("period").agg(pl.col("cohort").first()).iter_rows())
    assert cohorts == {"2020-01-01": "2020-01-01", "2010-01-01": "pooled", "2012-01-01": "pooled"}
    pooled = out.filter(pl.col("cohort") == "pooled")
    assert pooled.height == 35 and pooled["norm_score"].mean() == pytest.approx(0.5, abs=0.05)


def test_wilson_lower_bound_matches_hand_computed_values():
    frame = pl.DataFrame({"up": [1, 0, 10, 100, None], "down": [0, 0, 0, 10, 1]})
    got = frame.select(wilson_lower_bound(pl.col("up"), pl.col("down"), 1.96)).to_series()
    assert got[0] == pytest.approx(
        0.20654, abs=1e-5
    )  # 1 up: (1 + z^2/2 - z*sqrt(z^2/4)) / (1 + z^2)
    assert got[1] == 0.0 and got[4] is None
    assert got[2] == pytest.approx(0.72246, abs=1e-5)
    assert got[3] == pytest.approx(0.84070, abs=1e-5)
    # Philomena publishes its own (z = 2.57583): image 2316404 with 1 up, 0 down has 0.130977...
    philomena = frame.head(1).select(wilson_lower_bound(pl.col("up"), pl.col("down"), 2.57583))
    assert philomena.item() == pytest.approx(0.13097748173129398, abs=1e-9)


def test_a_site_without_votes_uses_its_score_alone():
    rng = np.random.default_rng(7)
    posts = make_posts(rng, 3000, site="gelbooru", votes=False, years=(2020, 2021))
    out = normalize(posts).join(posts.select("post_id", "score"), on="post_id")
    assert out["wilson"].is_null().all()
    ranks = out.select(pl.corr("score", "popularity", method="spearman")).item()
    assert ranks == pytest.approx(1.0, abs=1e-9)


def test_one_image_on_several_sites_has_one_key_and_one_canonical_post():
    rng = np.random.default_rng(8)
    danbooru = make_posts(rng, 200, site="danbooru")
    gelbooru = make_posts(rng, 200, site="gelbooru", votes=False).with_columns(md5=danbooru["md5"])
    philomena = make_posts(rng, 5, site="derpibooru", first_id=1).with_columns(
        md5=pl.lit(None, pl.String), sha512=pl.lit("ab" * 64)
    )
    orphan = make_posts(rng, 1, site="e621").with_columns(md5=pl.lit(None, pl.String))
    out = normalize(pl.concat([danbooru, gelbooru, philomena, orphan]))
    shared = out.filter(pl.col("site").is_in(["danbooru", "gelbooru"]))
    assert shared["image_key"].n_unique() == 200
    canonical = shared.filter("is_canonical")
    assert canonical.height == 200 and set(canonical["site"]) == {"danbooru"}
    assert set(out.filter(pl.col("site") == "derpibooru")["image_key"]) == {"sha512:" + "ab" * 16}
    assert out.filter(pl.col("site") == "e621")["image_key"].to_list() == ["e621:1"]
    per_key = out.group_by("image_key").agg(pl.col("is_canonical").sum())
    assert (per_key["is_canonical"] == 1).all()


def test_a_deleted_post_is_not_canonical_when_a_live_one_exists():
    rng = np.random.default_rng(9)
    danbooru = make_posts(rng, 50, site="danbooru", is_deleted=True)
    gelbooru = make_posts(rng, 50, site="gelbooru", votes=False).with_columns(md5=danbooru["md5"])
    out = normalize(pl.concat([danbooru, gelbooru]))
    assert set(out.filter("is_canonical")["site"]) == {"gelbooru"}


def test_newest_record_of_a_post_wins_across_files(tmp_path):
    rng = np.random.default_rng(10)
    old = make_posts(rng, 10).with_columns(
        updated_at=pl.lit(datetime(2021, 1, 1, tzinfo=UTC)),
        score=1,
        ingested_at=pl.lit(datetime(2026, 1, 1, tzinfo=UTC)),
        record=pl.int_range(10),
    )
    new = old.with_columns(
        updated_at=pl.lit(datetime(2026, 1, 1, tzinfo=UTC)),
        score=99,
        ingested_at=pl.lit(datetime(2025, 1, 1, tzinfo=UTC)),
    )
    old.write_parquet(tmp_path / "old.parquet")
    new.write_parquet(tmp_path / "new.parquet")
    current = current_posts([tmp_path / "old.parquet", tmp_path / "new.parquet"], ["score"])
    assert current.height == 10 and set(current["score"]) == {99}


def test_uniformity_tells_ties_from_wrong_percentiles():
    from assets.normalize.checks import uniformity

    rng = np.random.default_rng(11)
    tied = make_posts(rng, 2000, site="gelbooru", votes=False, years=(2020, 2021))
    tied = tied.with_columns(score=pl.when(pl.col("post_id") % 4 == 0).then(0).otherwise("score"))
    stats = uniformity(normalize(tied))
    (row,) = stats.to_dicts()
    assert row["largest_tie"] >= 0.25 and row["ks"] > 0.1  # ties alone
    assert row["ks_beyond_ties"] < 0.03
    skewed = normalize(tied).with_columns(norm_score=pl.col("norm_score") ** 3)
    assert uniformity(skewed)["ks_beyond_ties"][0] > 0.2
