"""Philomena (Derpibooru and the sites that run its software): `/api/v1/json/search/images`
pages (`{"images": [...]}`) and one image (`{"image": {...}}`).

Philomena has no rating field: the rating is one of the tags. It has no md5 (it identifies
files by sha512) and no tag categories beyond namespaces (`artist:`, `oc:`). Hidden and
duplicate images come back as stubs that carry only ids, dates and why they are gone: they
are skipped, not quarantined, because nothing is wrong with the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from assets.ingest import jsondoc
from assets.ingest.formats import Format, RawBatch, ReadOptions

SITE = "derpibooru"
# Weakest first: an image tagged with several ratings takes the strongest.
RATING_TAGS = {"safe": "g", "suggestive": "s", "questionable": "q", "explicit": "e"}
ARTIST = "artist:"
OWN_CHARACTER = "oc:"
# Gelbooru's posts also have an "image" field, but a string, never an object.
PAGE_KEY = re.compile(r'"images"\s*:\s*\[|"image"\s*:\s*\{')


def rating_tag(tags: list[str] | None) -> str | None:
    """The strongest rating tag among `tags`, or None when the image has none."""
    present = [t for t in RATING_TAGS if t in (tags or ())]
    return present[-1] if present else None


def stub_reason(image: dict) -> str | None:
    """Why a record is a stub for a hidden or duplicate image, or None for a real image."""
    if image.get("tags") is not None:
        return None
    duplicate, deletion = image.get("duplicate_of"), image.get("deletion_reason")
    if duplicate is not None:
        return f"duplicate of {duplicate}"
    if deletion is not None or image.get("hidden_from_users"):
        return f"hidden: {deletion or 'no reason given'}"
    return None


def _source(image: dict) -> object:
    # Newer Philomena versions list every source; older ones have only source_url.
    if "source_urls" not in image:
        return jsondoc.scalar(image.get("source_url"))
    urls = image["source_urls"]
    if isinstance(urls, list):
        return "\n".join(urls) or None
    return jsondoc.scalar(urls)


def _representations(image: dict) -> dict:
    """The image's renditions by name (`full`, `large`, `thumb`...)."""
    value = image.get("representations")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("representations is not an object")
    return value


def _row(image: dict) -> dict:
    scalar = jsondoc.scalar
    tags = jsondoc.tag_list(image.get("tags"), "tags")
    shown = _representations(image)
    raw_rating = rating_tag(tags)
    return {
        "post_id": scalar(image.get("id")),
        "sha512": scalar(image.get("sha512_hash")),
        "created_at": scalar(image.get("created_at")),
        "updated_at": scalar(image.get("updated_at")),
        "rating_raw": raw_rating,
        "rating": RATING_TAGS.get(raw_rating),
        "score": scalar(image.get("score")),
        "up_votes": scalar(image.get("upvotes")),
        "down_votes": scalar(image.get("downvotes")),
        "favorites": scalar(image.get("faves")),
        "width": scalar(image.get("width")),
        "height": scalar(image.get("height")),
        "file_ext": scalar(image.get("format")),
        "file_size": scalar(image.get("size")),
        # `full` is the original; view_url is the same file under a name spelling its tags.
        "file_url": scalar(shown.get("full") or image.get("view_url")),
        "sample_url": scalar(shown.get("large")),
        "preview_url": scalar(shown.get("thumb")),
        "source": _source(image),
        "tags": tags,
        "artist_tags": None
        if tags is None
        else [t.removeprefix(ARTIST) for t in tags if t.startswith(ARTIST)],
        "character_tags": None
        if tags is None
        else [t for t in tags if t.startswith(OWN_CHARACTER)],
        # The API renders an image in full only while it is visible (else a stub), and its JSON
        # has no moderation state, so a full record is read as neither deleted nor pending.
        "is_deleted": scalar(image.get("hidden_from_users", False)),
        "is_pending": False,
    }


def _images(doc: object) -> list | None:
    if isinstance(doc, dict) and isinstance(doc.get("images"), list):
        return doc["images"]
    if isinstance(doc, dict) and isinstance(doc.get("image"), dict):
        return [doc["image"]]
    return None


def read_api(path: Path, options: ReadOptions) -> Iterator[RawBatch]:
    yield jsondoc.read_page(
        path,
        _images,
        'a Philomena page ({"images": [...]} or {"image": {...}})',
        _row,
        skip=stub_reason,
    )


def sniff_api(text: str) -> bool:
    return text.lstrip().startswith("{") and PAGE_KEY.search(text) is not None


FORMATS = (
    Format(
        "philomena_api",
        SITE,
        'Philomena (Derpibooru) API: a search page {"images": [...]} or {"image": {...}}',
        sniff_api,
        read_api,
    ),
)
