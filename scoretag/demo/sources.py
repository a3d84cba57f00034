"""The demo's raw sources: which site, which file format, which years, which ratings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

SNAPSHOT = datetime(2026, 11, 1, tzinfo=UTC)
"""The demo's "today": API pages and the current dumps were taken at this moment."""


@dataclass(frozen=True)
class Source:
    kind: str
    site: str
    share: float  # of the demo's posts
    start: datetime  # the site's first upload
    snapshot: datetime  # when this file was taken
    ratings: dict[str, float]  # true rating -> probability
    raw_ratings: dict[str, str]  # true rating -> what this source writes


_DANBOORU_START = datetime(2005, 5, 24, tzinfo=UTC)
_GELBOORU_START = datetime(2007, 7, 15, tzinfo=UTC)
_E621_START = datetime(2007, 2, 10, tzinfo=UTC)
_IDENTITY = {"g": "g", "s": "s", "q": "q", "e": "e"}

SOURCES: tuple[Source, ...] = (
    Source(
        "danbooru_api",
        "danbooru",
        0.125,
        _DANBOORU_START,
        SNAPSHOT,
        {"g": 0.38, "s": 0.30, "q": 0.14, "e": 0.18},
        _IDENTITY,
    ),
    # Danbooru2021-style dump: before Danbooru's 2022 rating change, "s" meant safe.
    Source(
        "danbooru_dump",
        "danbooru",
        0.225,
        _DANBOORU_START,
        datetime(2022, 1, 21, tzinfo=UTC),
        {"g": 0.72, "q": 0.16, "e": 0.12},
        {"g": "s", "q": "q", "e": "e"},
    ),
    Source(
        "e621_api",
        "e621",
        0.10,
        _E621_START,
        SNAPSHOT,
        {"g": 0.30, "q": 0.17, "e": 0.53},
        {"g": "s", "q": "q", "e": "e"},
    ),
    Source(
        "e621_csv",
        "e621",
        0.20,
        _E621_START,
        SNAPSHOT,
        {"g": 0.30, "q": 0.17, "e": 0.53},
        {"g": "s", "q": "q", "e": "e"},
    ),
    Source(
        "derpibooru_api",
        "derpibooru",
        0.175,
        datetime(2012, 1, 2, tzinfo=UTC),
        SNAPSHOT,
        {"g": 0.62, "s": 0.16, "q": 0.08, "e": 0.14},
        {"g": "safe", "s": "suggestive", "q": "questionable", "e": "explicit"},
    ),
    Source(
        "gelbooru_json",
        "gelbooru",
        0.125,
        _GELBOORU_START,
        SNAPSHOT,
        {"g": 0.30, "s": 0.30, "q": 0.17, "e": 0.23},
        {"g": "general", "s": "sensitive", "q": "questionable", "e": "explicit"},
    ),
    # Gelbooru's legacy XML API, from before it adopted Danbooru's four ratings.
    Source(
        "gelbooru_xml",
        "gelbooru",
        0.05,
        _GELBOORU_START,
        datetime(2017, 6, 3, tzinfo=UTC),
        {"g": 0.60, "q": 0.20, "e": 0.20},
        {"g": "s", "q": "q", "e": "e"},
    ),
)

# Post ids each site had reached by SNAPSHOT; ids grow faster than linearly with time.
SITE_MAX_ID = {
    "danbooru": 10_300_000,
    "e621": 5_900_000,
    "derpibooru": 3_600_000,
    "gelbooru": 12_000_000,
}
SITE_START = {
    "danbooru": _DANBOORU_START,
    "e621": _E621_START,
    "derpibooru": datetime(2012, 1, 2, tzinfo=UTC),
    "gelbooru": _GELBOORU_START,
}

VIDEO_EXTS = {
    "danbooru": ("mp4", "webm", "zip"),
    "e621": ("webm", "mp4"),
    "derpibooru": ("webm",),
    "gelbooru": ("mp4", "webm"),
}
