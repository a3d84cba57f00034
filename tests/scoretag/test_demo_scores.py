import json

import numpy as np
import pytest

from scoretag.demo import scores
from tests.conftest import shared_path


def test_tables_are_hakubooru_numbers():
    published = json.loads(
        shared_path(
            "fixtures/booru/danbooru/hakubooru_danbooru_percentiles_by_rating.json"
        ).read_text()
    )
    for rating, cuts in published["score_percentile_full"].items():
        assert scores.SCORE_PERCENTILES[rating] == tuple(cuts[str(p)] for p in range(5, 100, 5))
    for rating, cuts in published["fav_count_percentile_full"].items():
        assert scores.FAV_PERCENTILES[rating] == tuple(
            cuts[str(p)] for p in (10, 25, 50, 75, 85, 95)
        )


@pytest.mark.parametrize("rating", ["g", "s", "q", "e"])
def test_mature_danbooru_scores_follow_the_published_percentiles(rating: str):
    rng = np.random.default_rng(0)
    n = 200_000
    u = rng.random(n)
    year = np.full(n, 2017.5)
    got = scores.net_scores(np.full(n, rating), u, "danbooru", np.full(n, 10_000.0), year)
    got /= scores.era(year)  # the published table mixes all eras
    table = scores.SCORE_PERCENTILES[scores.RATING_NAMES[rating]]
    for level, expected in zip(range(5, 100, 5), table, strict=True):
        assert np.percentile(got, level) == pytest.approx(expected, abs=1.0, rel=0.05)


def test_young_and_old_posts_score_lower():
    assert scores.growth(np.array([1.0]))[0] < 0.1 < 0.9 < scores.growth(np.array([90.0]))[0]
    assert scores.era(np.array([2010.0]))[0] < 0.7 < 1.3 < scores.era(np.array([2025.0]))[0]


def test_votes_are_counts_that_add_up():
    rng = np.random.default_rng(1)
    u = rng.random(5000)
    up, down, score = scores.split_votes(rng, u * 40, u)
    assert (up >= 0).all() and (down >= 0).all()
    assert (score == up - down).all()
    assert (score < 0).any()


def test_appeal_rises_with_popularity_and_quality():
    rng = np.random.default_rng(2)
    n = 20_000
    pop = rng.random(n)
    u = scores.popularity_rank(rng, pop, np.zeros(n), rng.standard_normal(n))
    assert u.min() > 0 and u.max() < 1
    assert np.corrcoef(pop, u)[0, 1] > 0.2
