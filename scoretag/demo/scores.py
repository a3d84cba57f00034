"""Booru scores with the biases real ones have: rating, popularity of the subject, and age.

The per-rating shape follows Danbooru's score and favourite percentiles as published by
HakuBooru (KohakuBlueleaf/HakuBooru `metainfo.py`, Apache-2.0): explicit posts score about
five times what general ones do. On top of that shape:
- votes accumulate over a post's first weeks (`growth`), so young posts score low;
- later eras had more users voting (`era`), so old posts score low too;
- popular characters and artists lift the score, and image quality lifts it a little.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

# Danbooru score cut-points per rating, percentiles 5, 10, ..., 95 ("score_percentile_full").
SCORE_PERCENTILES: dict[str, tuple[float, ...]] = {
    "general": (0, 1, 2, 3, 3, 4, 5, 5, 6, 7, 8, 9, 11, 12, 14, 16, 19, 24, 33),
    "sensitive": (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 15, 17, 20, 25, 31, 41, 62),
    "questionable": (2, 4, 5, 7, 9, 11, 14, 16, 19, 23, 26, 31, 36, 42, 49, 59, 73, 93, 134),
    "explicit": (2, 4, 7, 10, 13, 17, 20, 25, 29, 35, 41, 48, 56, 66, 78, 94, 115, 148, 211),
}
_SCORE_LEVELS = tuple(range(5, 100, 5))

# Danbooru favourite cut-points per rating at percentiles 10, 25, 50, 75, 85, 95.
FAV_PERCENTILES: dict[str, tuple[float, ...]] = {
    "general": (1, 3, 8, 16, 22, 37),
    "sensitive": (2, 6, 15, 30, 44, 81),
    "questionable": (8, 18, 38, 75, 105, 182),
    "explicit": (9, 22, 52, 106, 151, 262),
}
_FAV_LEVELS = (10, 25, 50, 75, 85, 95)

RATING_NAMES = {"g": "general", "s": "sensitive", "q": "questionable", "e": "explicit"}

# How a site's scores compare with Danbooru's (e621 and Philomena users vote more,
# Gelbooru's score is a bare counter that few use).
SITE_SCALE = {"danbooru": 1.0, "e621": 1.6, "derpibooru": 2.2, "gelbooru": 0.45}

_TAIL = 2.5  # the 100th percentile, as a multiple of the 95th


def quantile(table: tuple[float, ...], levels: tuple[int, ...], u: np.ndarray) -> np.ndarray:
    """Inverse CDF through the published cut-points, linear between them."""
    xs = np.array([0.0, *(lv / 100 for lv in levels), 1.0])
    ys = np.array([0.0, *table, table[-1] * _TAIL])
    return np.interp(u, xs, ys)


def growth(age_days: np.ndarray) -> np.ndarray:
    """Share of its eventual votes a post has at this age (most come in the first weeks)."""
    return 1.0 - np.exp(-np.maximum(age_days, 0.0) / 30.0)


def era(year: np.ndarray) -> np.ndarray:
    """More users voted in later years: about 0.6x in 2010, 1x in 2017, 1.45x from 2024."""
    return 0.6 + 0.9 / (1.0 + np.exp(-(year - 2017.5) / 2.0))


def popularity_rank(
    rng: np.random.Generator,
    character_pop: np.ndarray,
    artist_pop: np.ndarray,
    quality: np.ndarray,
) -> np.ndarray:
    """A post's percentile of appeal in (0, 1): mostly luck, partly content, a little quality."""
    z = 0.9 * character_pop + 0.35 * artist_pop + 0.25 * quality + rng.standard_normal(len(quality))
    return ndtr((z - z.mean()) / z.std())


def net_scores(
    rating: np.ndarray, u: np.ndarray, site: str, age_days: np.ndarray, year: np.ndarray
) -> np.ndarray:
    """The score a post shows today: rating shape x site scale x era x growth."""
    base = np.zeros(len(u))
    for code, name in RATING_NAMES.items():
        mask = rating == code
        base[mask] = quantile(SCORE_PERCENTILES[name], _SCORE_LEVELS, u[mask])
    return base * SITE_SCALE[site] * era(year) * growth(age_days)


def favorites(
    rng: np.random.Generator,
    rating: np.ndarray,
    u: np.ndarray,
    age_days: np.ndarray,
    year: np.ndarray,
) -> np.ndarray:
    """Favourites, correlated with the score's percentile but not equal to it."""
    jitter = np.clip(u + rng.normal(0, 0.08, len(u)), 0, 1)
    favs = np.zeros(len(u))
    for code, name in RATING_NAMES.items():
        mask = rating == code
        favs[mask] = quantile(FAV_PERCENTILES[name], _FAV_LEVELS, jitter[mask])
    return np.rint(favs * era(year) * growth(age_days)).astype(np.int64)


def split_votes(
    rng: np.random.Generator, net: np.ndarray, u: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Up and down vote counts (both >= 0) around a target net score.

    Disliked posts (low u) draw more down votes, so a few end below zero.
    """
    down = rng.poisson(0.04 * net + 2.5 * (1 - u) ** 6)
    up = np.rint(net).astype(np.int64) + down
    disliked = u < 0.03
    up[disliked] = rng.poisson(0.5, disliked.sum())
    score = up - down
    return up, down, score
