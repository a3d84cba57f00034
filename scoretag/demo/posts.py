"""The demo's posts as ground truth: one row per post, before any site format is applied.

Site writers (`writers/`) turn this table into each site's real files; tests compare what
ingestion reads back from those files with this table.
"""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl

from scoretag.demo import scores
from scoretag.demo.sources import SITE_MAX_ID, SITE_START, SNAPSHOT, SOURCES, VIDEO_EXTS
from scoretag.demo.tagging import TagDraw, draw_tags

DAY = 86_400.0
STYLE_SHARES = {
    "flat": 0.55,
    "lineart": 0.08,
    "monochrome": 0.08,
    "comic": 0.08,
    "3d": 0.06,
    "traditional": 0.06,
    "photo": 0.05,
    "pixel_art": 0.04,
}
CROSS_SITE_SHARE = 0.1  # of images, also posted on a second site
REFETCHED_SHARE = 0.01  # of posts: Danbooru dump posts that appear again, newer, in API pages
IMAGE_COLUMNS = (
    "image_id",
    "md5",
    "sha512",
    "file_ext",
    "file_size",
    "width",
    "height",
    "style",
    "quality",
)


def _epoch(dt) -> float:
    return dt.timestamp()


def _allocate(n_posts: int) -> np.ndarray:
    """Source index per post, in proportion to each source's share."""
    shares = np.array([s.share for s in SOURCES])
    counts = np.floor(shares / shares.sum() * n_posts).astype(int)
    counts[0] += n_posts - counts.sum()
    return np.repeat(np.arange(len(SOURCES)), counts)


def _created_at(rng: np.random.Generator, source_idx: np.ndarray) -> np.ndarray:
    """Upload times: more uploads in later years, and some posts only days old."""
    created = np.empty(len(source_idx))
    for i, source in enumerate(SOURCES):
        mask = source_idx == i
        start, end = _epoch(source.start), _epoch(source.snapshot) - 3600
        u = rng.random(mask.sum())
        frac = np.log1p(u * (np.e**2.2 - 1)) / 2.2  # denser towards the snapshot
        t = start + frac * (end - start)
        fresh = rng.random(mask.sum()) < 0.06
        t[fresh] = end - rng.random(fresh.sum()) * 30 * DAY
        created[mask] = np.floor(t) + rng.integers(0, 1000, mask.sum()) / 1000
    return created


def _post_ids(sites: np.ndarray, created: np.ndarray) -> np.ndarray:
    """Ids that grow with upload time within each site, unique per site."""
    ids = np.zeros(len(sites), dtype=np.int64)
    for site, max_id in SITE_MAX_ID.items():
        mask = np.flatnonzero(sites == site)
        start, end = _epoch(SITE_START[site]), _epoch(SNAPSHOT)
        order = mask[np.argsort(created[mask], kind="stable")]
        raw = (max_id * ((created[order] - start) / (end - start)) ** 1.6).astype(np.int64) + 1
        steps = np.arange(len(order))
        ids[order] = np.maximum.accumulate(raw - steps) + steps
    return ids


def _ratings(rng: np.random.Generator, source_idx: np.ndarray) -> np.ndarray:
    rating = np.empty(len(source_idx), dtype="<U1")
    for i, source in enumerate(SOURCES):
        mask = source_idx == i
        codes, probs = zip(*source.ratings.items(), strict=True)
        rating[mask] = rng.choice(codes, size=mask.sum(), p=np.array(probs) / sum(probs))
    return rating


def _assign_images(rng: np.random.Generator, sites: np.ndarray, images: pl.DataFrame) -> np.ndarray:
    """Image index per post (-1: the image was never downloaded).

    Every image belongs to one post; about a tenth also to a post on a second site, except
    Philomena ones, which those sites identify by sha512 rather than md5.
    """
    n_img = images.height
    image_of = np.full(len(sites), -1, dtype=np.int64)
    primary = rng.choice(len(sites), size=n_img, replace=False)
    image_of[primary] = np.arange(n_img)
    free = np.setdiff1d(np.arange(len(sites)), primary)
    for img in rng.choice(n_img, size=int(n_img * CROSS_SITE_SHARE), replace=False):
        site = sites[primary[img]]
        if site == "derpibooru":
            continue
        candidates = free[(sites[free] != site) & (sites[free] != "derpibooru")]
        if not len(candidates):
            break
        pick = rng.choice(candidates)
        image_of[pick] = img
        free = free[free != pick]
    return image_of


def _random_sizes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    long_side = np.rint(np.exp(rng.normal(np.log(1800), 0.45, n))).astype(np.int64)
    aspect = rng.choice([2 / 3, 3 / 4, 1.0, 4 / 3, 16 / 9, 9 / 16], size=n)
    width = np.where(aspect >= 1, long_side, np.rint(long_side * aspect)).astype(np.int64)
    height = np.where(aspect >= 1, np.rint(long_side / aspect), long_side).astype(np.int64)
    return width, height


def _file_facts(
    rng: np.random.Generator, sites: np.ndarray, image_of: np.ndarray, images: pl.DataFrame
) -> dict[str, np.ndarray]:
    """md5, size, extension and style per post: the image's where it has one."""
    n = len(sites)
    width, height = _random_sizes(rng, n)
    ext = rng.choice(["jpg", "png", "webp"], size=n, p=[0.62, 0.33, 0.05]).astype("<U4")
    size = np.rint(width * height * rng.uniform(0.15, 1.2, n)).astype(np.int64)
    md5 = np.array([hashlib.md5(rng.bytes(16)).hexdigest() for _ in range(n)])
    sha512 = np.array([hashlib.sha512(m.encode()).hexdigest() for m in md5])
    styles, shares = zip(*STYLE_SHARES.items(), strict=True)
    style = rng.choice(styles, size=n, p=shares).astype("<U12")
    quality = rng.integers(1, 6, n)
    has = image_of >= 0
    img = {c: images[c].to_numpy()[image_of[has]] for c in IMAGE_COLUMNS}
    # An empty file has no size of its own: its post keeps the size the site reported.
    sized = img["width"] > 0
    idx = np.flatnonzero(has)
    width[idx[sized]], height[idx[sized]] = img["width"][sized], img["height"][sized]
    ext[has] = img["file_ext"]
    size[has], md5[has], sha512[has] = img["file_size"], img["md5"], img["sha512"]
    style[has], quality[has] = img["style"], img["quality"]
    video = ~has & (rng.random(n) < 0.025)
    for site, exts in VIDEO_EXTS.items():
        mask = video & (sites == site)
        ext[mask] = rng.choice(exts, size=mask.sum())
    return {
        "width": width,
        "height": height,
        "file_ext": ext,
        "file_size": size,
        "md5": md5,
        "sha512": sha512,
        "style": style,
        "quality": quality,
        "is_video": video,
    }


def _votes(rng, sources: np.ndarray, sites, rating, created, quality, tags: TagDraw) -> dict:
    """Scores, votes and favourites as each site would show them at its snapshot."""
    snapshot = np.array([_epoch(SOURCES[i].snapshot) for i in sources])
    age_days = (snapshot - created) / DAY
    year = 1970 + created / (365.2425 * DAY)
    quality_z = (quality - 3) / 1.4
    u = scores.popularity_rank(rng, tags.character_pop, tags.artist_pop, quality_z)
    n = len(sites)
    up, down, net, favs = (np.zeros(n, dtype=np.int64) for _ in range(4))
    for site in np.unique(sites):
        m = sites == site
        target = scores.net_scores(rating[m], u[m], str(site), age_days[m], year[m])
        up[m], down[m], net[m] = scores.split_votes(rng, target, u[m])
        favs[m] = scores.favorites(rng, rating[m], u[m], age_days[m], year[m])
    favs = np.where(sites == "danbooru", favs, np.rint(up * rng.uniform(0.4, 1.1, n)))
    return {
        "score": net,
        "up_votes": up,
        "down_votes": down,
        "favorites": favs.astype(np.int64),
        "appeal": u,
        "age_days": age_days,
    }


def _sources_urls(rng: np.random.Generator, sites: np.ndarray, ids: np.ndarray) -> list[str]:
    urls = []
    for site, pid in zip(sites, ids, strict=True):
        roll = rng.random()
        if roll < 0.15:
            urls.append("")
        elif roll < 0.6:
            urls.append(f"https://www.pixiv.net/artworks/{80_000_000 + pid % 40_000_000}")
        elif site in ("e621", "derpibooru") and roll < 0.85:
            urls.append(
                f"https://www.furaffinity.net/view/{30_000_000 + pid % 9_000_000}/\n"
                f"https://twitter.com/i/status/{1_300_000_000_000_000_000 + pid}"
            )
        else:
            urls.append(f"https://twitter.com/i/status/{1_300_000_000_000_000_000 + pid}")
    return urls


def _flags(rng, sites, ids, age_days) -> dict[str, np.ndarray]:
    """Deleted, pending and banned posts, and parents (an older post of the same site)."""
    n = len(sites)
    deleted = rng.random(n) < 0.04
    pending = ~deleted & (age_days < 7) & (rng.random(n) < 0.3)
    # Philomena removes deleted images from search results (they come back as stubs), and
    # its API has neither a pending state nor parents.
    philomena = sites == "derpibooru"
    deleted[philomena] = False
    pending[philomena] = False
    banned = (sites == "danbooru") & ~deleted & (rng.random(n) < 0.004)
    parent = np.full(n, -1, dtype=np.int64)
    for i in np.flatnonzero((rng.random(n) < 0.03) & ~philomena):
        older = ids[(sites == sites[i]) & (ids < ids[i])]
        if len(older):
            parent[i] = rng.choice(older)
    return {"is_deleted": deleted, "is_pending": pending, "is_banned": banned, "parent_id": parent}


def _refetch(columns: dict, kinds: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Some Danbooru posts appear in the 2022 dump and again, updated, in today's API pages.

    The API copy keeps the post's identity and content and shows today's score; ingestion
    keeps the newer one.
    """
    count = max(1, round(REFETCHED_SHARE * len(kinds)))
    dump = rng.choice(np.flatnonzero(kinds == "danbooru_dump"), count, replace=False)
    api = rng.choice(
        np.flatnonzero((kinds == "danbooru_api") & (columns["image_of"] < 0)), count, replace=False
    )
    keep = (
        "post_id",
        "created_at",
        "md5",
        "sha512",
        "width",
        "height",
        "file_ext",
        "file_size",
        "rating",
        "image_of",
        "style",
        "quality",
        "is_video",
        *(f"{c}_tags" for c in ("general", "artist", "character", "copyright", "species", "meta")),
    )
    for name in keep:
        values = columns[name]
        for a, d in zip(api, dump, strict=True):
            values[a] = values[d]
    grown = np.rint(columns["up_votes"][dump] * rng.uniform(1.1, 1.6, count)) + 1
    columns["up_votes"][api] = grown.astype(np.int64)
    columns["down_votes"][api] = columns["down_votes"][dump]
    columns["score"][api] = columns["up_votes"][api] - columns["down_votes"][api]
    columns["favorites"][api] = columns["favorites"][dump] + rng.integers(0, 8, count)
    return api


def _updated_at(rng: np.random.Generator, kinds_idx: np.ndarray, created: np.ndarray) -> np.ndarray:
    snapshot = np.array([_epoch(SOURCES[i].snapshot) for i in kinds_idx])
    return np.floor(created + (snapshot - created) * rng.beta(0.6, 2.0, len(created)))


def _utc(seconds: np.ndarray) -> pl.Series:
    return pl.Series((seconds * 1e6).astype(np.int64)).cast(pl.Datetime("us", "UTC"))


def generate_posts(images: pl.DataFrame, n_posts: int, seed: int) -> pl.DataFrame:
    """Ground truth for every demo post, sorted by site, source file kind and post id."""
    rng = np.random.default_rng([seed, 1])
    source_idx = _allocate(n_posts)
    kinds = np.array([SOURCES[i].kind for i in source_idx])
    sites = np.array([SOURCES[i].site for i in source_idx])
    created = _created_at(rng, source_idx)
    ids = _post_ids(sites, created)
    rating = _ratings(rng, source_idx)
    image_of = _assign_images(rng, sites, images)
    files = _file_facts(rng, sites, image_of, images)
    years = (1970 + created // (365.2425 * DAY)).astype(int)
    post_facts = [
        {
            "rating": r,
            "style": s,
            "width": int(w),
            "height": int(h),
            "is_video": bool(v),
            "year": int(y),
        }
        for r, s, w, h, v, y in zip(
            rating,
            files["style"],
            files["width"],
            files["height"],
            files["is_video"],
            years,
            strict=True,
        )
    ]
    tags = draw_tags(rng, sites, post_facts)
    votes = _votes(rng, source_idx, sites, rating, created, files["quality"], tags)
    columns = {
        "post_id": ids,
        "created_at": created,
        "rating": rating,
        "image_of": image_of,
        **files,
        **{k: v for k, v in votes.items() if k != "age_days"},
    }
    for category, lists in tags.lists.items():
        columns[f"{category}_tags"] = lists
    refetched = _refetch(columns, kinds, rng)
    columns["updated_at"] = _updated_at(rng, source_idx, columns["created_at"])
    columns["updated_at"][refetched] = _epoch(SNAPSHOT) - rng.uniform(1, 60, len(refetched)) * DAY
    age_days = (
        np.array([_epoch(SOURCES[i].snapshot) for i in source_idx]) - columns["created_at"]
    ) / DAY
    columns.update(_flags(rng, sites, columns["post_id"], age_days))
    columns["source"] = _sources_urls(rng, sites, columns["post_id"])
    return _frame(columns, kinds, sites, source_idx, age_days)


def _frame(columns: dict, kinds, sites, source_idx, age_days) -> pl.DataFrame:
    raw = np.array(
        [SOURCES[i].raw_ratings[r] for i, r in zip(source_idx, columns["rating"], strict=True)]
    )
    has_image = columns["image_of"] >= 0
    frame = pl.DataFrame(
        {
            "site": sites,
            "source_kind": kinds,
            "post_id": columns["post_id"],
            "image_id": pl.Series(np.where(has_image, columns["image_of"], 0)),
            "md5": columns["md5"],
            "sha512": columns["sha512"],
            "created_at": _utc(columns["created_at"]),
            "updated_at": _utc(columns["updated_at"]),
            "age_days": age_days,
            "rating": columns["rating"],
            "rating_raw": raw,
            "score": columns["score"],
            "up_votes": columns["up_votes"],
            "down_votes": columns["down_votes"],
            "favorites": columns["favorites"],
            "appeal": columns["appeal"],
            "quality": columns["quality"],
            "style": columns["style"],
            "width": columns["width"],
            "height": columns["height"],
            "file_ext": columns["file_ext"],
            "file_size": columns["file_size"],
            "is_video": columns["is_video"],
            "has_image": has_image,
            **{
                f"{c}_tags": pl.Series(columns[f"{c}_tags"], dtype=pl.List(pl.String))
                for c in ("general", "artist", "character", "copyright", "species", "meta")
            },
            "source": columns["source"],
            "is_deleted": columns["is_deleted"],
            "is_pending": columns["is_pending"],
            "is_banned": columns["is_banned"],
            "parent_id": columns["parent_id"],
        }
    )
    frame = frame.with_columns(
        image_id=pl.when("has_image").then("image_id"),
        parent_id=pl.when(pl.col("parent_id") >= 0).then("parent_id"),
    )
    # Where a post appears twice (dump and API), the older record is superseded.
    newest = pl.col("updated_at") == pl.col("updated_at").max().over("site", "post_id")
    return frame.with_columns(superseded=~newest).sort("site", "source_kind", "post_id")
