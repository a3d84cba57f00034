"""Tags for demo posts, by category, in each site's vocabulary and conventions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scoretag.demo.vocabulary import (
    PHILOMENA_DARK_TAGS,
    VOCABULARIES,
    Vocabulary,
    artist_names,
)

CATEGORIES = ("general", "artist", "character", "copyright", "species", "meta")
GENERAL_RANGE = {
    "danbooru": (10, 36),
    "gelbooru": (10, 36),
    "e621": (15, 45),
    "derpibooru": (6, 20),
}
ARTISTS_PER_SITE = 120


@dataclass
class TagDraw:
    """Tag lists per category (one list per post) and the popularity behind them."""

    lists: dict[str, list[list[str]]]
    character_pop: np.ndarray
    artist_pop: np.ndarray


def _pick(rng: np.random.Generator, tags: tuple[str, ...], k: int, weights=None) -> list[str]:
    k = min(k, len(tags))
    if k <= 0:
        return []
    p = None if weights is None else np.asarray(weights) / np.sum(weights)
    return [str(t) for t in rng.choice(tags, size=k, replace=False, p=p)]


def _resolution_meta(site: str, width: int, height: int) -> list[str]:
    big, huge = width * height >= 1600 * 1200, width * height >= 3200 * 2400
    names = {"e621": ("hi_res", "absurd_res"), "derpibooru": ("high res", "absurd res")}
    high, absurd = names.get(site, ("highres", "absurdres"))
    return [absurd] if huge else [high] if big else []


def _characters(rng: np.random.Generator, vocab: Vocabulary) -> tuple[list, list, float]:
    """0-2 characters, popular ones more often; their franchises become copyright tags."""
    pops = np.array([c.popularity for c in vocab.characters])
    count = rng.choice([0, 1, 2], p=[0.35, 0.55, 0.10])
    chosen = rng.choice(len(pops), size=count, replace=False, p=pops / pops.sum())
    characters = [vocab.characters[i] for i in chosen]
    copyrights = sorted({c for ch in characters for c in ch.copyrights})
    if not copyrights and vocab.original and rng.random() < 0.7:
        copyrights = [vocab.original]
    pop = max((ch.popularity for ch in characters), default=0.0)
    return [ch.name for ch in characters], copyrights, pop


def _content(rng: np.random.Generator, vocab: Vocabulary, rating: str) -> list[str]:
    if rating == "e":
        return _pick(rng, vocab.explicit, rng.integers(2, 5))
    if rating == "q":
        return _pick(rng, vocab.questionable, rng.integers(1, 4))
    if rating == "s":
        return _pick(rng, vocab.questionable, rng.integers(0, 3))
    return []


def _one_post(rng, site: str, vocab: Vocabulary, artists, artist_w, post: dict) -> dict:
    lo, hi = GENERAL_RANGE[site]
    general = _pick(rng, vocab.general, rng.integers(lo, hi), vocab.general_weights)
    general += _content(rng, vocab, post["rating"])
    style = list(vocab.style_tags.get(post["style"], ()))
    style = style[: rng.integers(1, len(style) + 1)] if style else []
    characters, copyrights, char_pop = _characters(rng, vocab)
    n_artists = rng.choice([0, 1, 2], p=[0.04, 0.93, 0.03])
    chosen = rng.choice(len(artists), size=n_artists, replace=False, p=artist_w)
    meta = _resolution_meta(site, post["width"], post["height"])
    meta += _pick(rng, vocab.meta, rng.integers(0, 3))
    if post["is_video"]:
        meta += ["animated", "webm" if site == "e621" else "video"]
    species = _pick(rng, vocab.species, rng.integers(1, 4)) if vocab.species else []
    if site == "e621":  # e621 files style tags, and the year the work was made, under meta
        meta += [*style, str(post["year"])]
    else:
        general += style
    if site == "derpibooru":
        general += [vocab.rating_tags[post["rating"]]]
        if rng.random() < 0.05:
            general.append(str(rng.choice(PHILOMENA_DARK_TAGS)))
    lists = {
        "general": general,
        "artist": [artists[i] for i in chosen],
        "character": characters,
        "copyright": copyrights,
        "species": species,
        "meta": meta,
    }
    lists = {k: list(dict.fromkeys(v)) for k, v in lists.items()}
    art_pop = float(np.log(artist_w[chosen].max() * len(artists))) if n_artists else 0.0
    return {"lists": lists, "char_pop": char_pop, "artist_pop": art_pop}


def draw_tags(rng: np.random.Generator, sites: np.ndarray, posts: list[dict]) -> TagDraw:
    """Tags for every post; `posts` holds rating, style, width, height, is_video, year."""
    roster = {}
    for site in VOCABULARIES:
        names = artist_names(site, ARTISTS_PER_SITE, rng)
        weights = rng.lognormal(0, 1.2, ARTISTS_PER_SITE)
        roster[site] = (names, weights / weights.sum())
    lists: dict[str, list[list[str]]] = {c: [] for c in CATEGORIES}
    char_pop, artist_pop = np.zeros(len(posts)), np.zeros(len(posts))
    for i, (site, post) in enumerate(zip(sites, posts, strict=True)):
        drawn = _one_post(rng, str(site), VOCABULARIES[site], *roster[site], post)
        for category in CATEGORIES:
            lists[category].append(drawn["lists"][category])
        char_pop[i], artist_pop[i] = drawn["char_pop"], drawn["artist_pop"]
    return TagDraw(lists=lists, character_pop=char_pop, artist_pop=artist_pop)
