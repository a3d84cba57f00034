from datetime import UTC, datetime

import numpy as np
import polars as pl

from assets.pool.pool import empty_pool, grow, strata_table
from assets.pool.sample import draw, quotas
from assets.pool.styles import style
from orchestration.settings import PoolSettings

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def strata(rows: list[tuple[str, int, int, int]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["stratum", "total", "pooled", "available"], orient="row")


def test_quotas_give_minimums_then_proportional_shares():
    table = strata([("big", 900, 0, 900), ("mid", 90, 0, 90), ("rare", 3, 0, 3)])
    got = dict(quotas(table, 100, minimum=5).iter_rows())
    assert sum(got.values()) == 100
    assert got["rare"] == 3  # all it has
    assert got["big"] > got["mid"] > got["rare"]
    assert got["mid"] >= 5


def test_quotas_never_draw_more_than_a_stratum_has_or_the_round_allows():
    table = strata([("a", 10, 8, 2), ("b", 50, 0, 50)])
    got = dict(quotas(table, 30, minimum=2).iter_rows())
    assert got["a"] <= 2 and sum(got.values()) == 30


def test_when_minimums_exceed_the_round_the_rarest_strata_keep_theirs():
    table = strata([(f"s{i}", n, 0, n) for i, n in enumerate([1, 2, 50, 80, 300])])
    got = dict(quotas(table, 3, minimum=1).iter_rows())
    assert sum(got.values()) == 3
    assert got["s0"] == got["s1"] == got["s2"] == 1 and got["s4"] == 0


def test_a_full_pool_draws_nothing():
    table = strata([("a", 10, 10, 0), ("b", 50, 5, 45)])
    assert quotas(table, 0, minimum=2)["quota"].sum() == 0


def _candidates(n: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    keys = [f"danbooru:{i}" for i in range(n)]
    return (
        pl.DataFrame(
            {
                "post_key": keys,
                "site": "danbooru",
                "post_id": np.arange(n),
                "image_key": [f"{i:032x}" for i in range(n)],
                "image_path": [f"/images/{i:032x}.jpg" for i in range(n)],
                "image_offset": np.full(n, -1),
                "image_length": np.full(n, -1),
                "rating": rng.choice(["g", "s", "q", "e"], n),
                "norm_score": rng.random(n),
                "style": rng.choice(["other", "3d", "sketch"], n, p=[0.9, 0.05, 0.05]),
                "excluded": pl.Series([None] * n, dtype=pl.String),
            }
        )
        .with_columns(decile=(pl.col("norm_score") * 10).floor().cast(pl.Int8))
        .with_columns(stratum=pl.format("danbooru/{}/d{}/{}", "rating", "decile", "style"))
    )


def test_draw_is_reproducible_and_rounds_differ():
    cands = _candidates(2000)
    quota = quotas(strata_table(cands, empty_pool()), 200, 2)
    first = set(draw(cands, quota, seed=3, round_number=1)["post_key"])
    shuffled = cands.sample(fraction=1, shuffle=True, seed=9)
    assert set(draw(shuffled, quota, seed=3, round_number=1)["post_key"]) == first
    assert set(draw(cands, quota, seed=3, round_number=2)["post_key"]) != first
    assert set(draw(cands, quota, seed=4, round_number=1)["post_key"]) != first


def test_growing_never_touches_earlier_rounds():
    cands = _candidates(3000)
    settings = PoolSettings(size=300, min_per_stratum=2, seed=1)
    first, round1 = grow(empty_pool(), cands, settings, NOW)
    assert round1.number == 1 and first.height == 300
    assert grow(first, cands, settings, NOW) == (first, None)
    bigger, round2 = grow(first, cands, settings.model_copy(update={"size": 500}), NOW)
    assert round2.number == 2 and round2.added == 200
    assert bigger.head(300).equals(first)
    assert bigger["image_key"].is_unique().all()
    assert set(bigger.filter(pl.col("round") == 2)["reason"].str.slice(0, 18)) == {
        "stratified round 2"
    }


def test_rare_styles_are_in_the_pool():
    cands = _candidates(5000, seed=4)
    pool, _ = grow(empty_pool(), cands, PoolSettings(size=400, min_per_stratum=2), NOW)
    table = strata_table(cands, pool)
    needed = pl.min_horizontal(pl.lit(2), "total")
    assert table.filter(pl.col("pooled") < needed).height == 0
    assert {"3d", "sketch"} <= set(pool["style"])


def test_excluded_posts_never_enter():
    cands = _candidates(500).with_columns(
        excluded=pl.when(pl.col("post_id") % 2 == 0).then(pl.lit("deleted"))
    )
    pool, _ = grow(empty_pool(), cands, PoolSettings(size=1000, min_per_stratum=1), NOW)
    assert pool.height == 250 and (pool["post_id"] % 2 == 1).all()


def test_style_is_the_first_listed_match():
    frame = pl.DataFrame({"tags": [["1girl", "3d", "monochrome"], ["monochrome"], ["solo"], None]})
    styles = {"3d": ("3d",), "monochrome": ("monochrome", "greyscale")}
    assert frame.select(style(pl.col("tags"), styles)).to_series().to_list() == [
        "3d",
        "monochrome",
        "other",
        "other",
    ]


def test_demo_pool_is_reproducible_and_covers_every_stratum(demo_layout, demo_scored, tmp_path):
    from assets.images.find import load_index, scan
    from assets.ingest.current import current_posts
    from assets.pool.eligible import candidates
    from orchestration.settings import load_settings
    from tests.images.helpers import profile as image_profile

    files, scores = demo_scored
    settings = load_settings("demo").pool
    layout, profile = image_profile(tmp_path, demo_layout.images)
    posts = current_posts(files, ["md5", "sha512"])
    scan(layout, profile, posts)
    cands = candidates(files, scores, load_index(layout, profile), settings)
    first, _ = grow(empty_pool(), cands, settings, NOW)
    again, _ = grow(empty_pool(), cands.sample(fraction=1, shuffle=True, seed=1), settings, NOW)
    assert first.sort("post_key").equals(again.sort("post_key"))
    assert first.height == 420 and first["image_key"].is_unique().all()
    assert strata_table(cands, first).filter(pl.col("pooled") < 1).height == 0
    eligible = cands.filter(pl.col("excluded").is_null())
    assert set(first["post_key"]) <= set(eligible["post_key"])
    assert set(first["site"]) == {"danbooru", "e621", "derpibooru", "gelbooru"}
    reasons = set(cands["excluded"].drop_nulls())
    assert reasons == {
        "deleted",
        "immature",
        "not an image",
        "image file missing",
        "duplicate image",
    }
