"""Gelbooru's formats: the JSON API (`{"@attributes": ..., "post": [...]}`) and the legacy XML
API (`<posts><post .../></posts>`) from before it adopted Danbooru's four ratings. Gelbooru
has no vote counts and no tag categories in either."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import polars as pl

from scoretag.demo.writers.common import (
    Written,
    ctime_local,
    page_name,
    write_bytes,
    write_json,
)

PAGE_SIZE = 100  # Gelbooru's maximum `limit`
CATEGORIES = ("general", "artist", "character", "copyright", "meta")


def _tag_string(post: dict) -> str:
    return " ".join(sorted(t for c in CATEGORIES for t in post[f"{c}_tags"]))


def _status(post: dict) -> str:
    return "deleted" if post["is_deleted"] else "pending" if post["is_pending"] else "active"


def _urls(post: dict) -> dict[str, str]:
    md5, ext = post["md5"], post["file_ext"]
    directory = f"{md5[:2]}/{md5[2:4]}"
    return {
        "directory": directory,
        "image": f"{md5}.{ext}",
        "file_url": f"https://img3.gelbooru.com/images/{directory}/{md5}.{ext}",
        "sample_url": f"https://img3.gelbooru.com/samples/{directory}/sample_{md5}.jpg",
        "preview_url": f"https://img3.gelbooru.com/thumbnails/{directory}/thumbnail_{md5}.jpg",
    }


def _sample(post: dict) -> tuple[str, int, int]:
    """(sample_url, width, height): Gelbooru samples images wider than 850 pixels and writes
    "" and zeros for the others."""
    if post["width"] <= 850:
        return "", 0, 0
    return _urls(post)["sample_url"], 850, round(post["height"] * 850 / post["width"])


def json_record(post: dict) -> dict:
    urls = _urls(post)
    sample_url, sample_width, sample_height = _sample(post)
    return {
        "id": post["post_id"],
        "created_at": ctime_local(post["created_at"]),
        "score": post["score"],
        "width": post["width"],
        "height": post["height"],
        "md5": post["md5"],
        "directory": urls["directory"],
        "image": urls["image"],
        "rating": post["rating_raw"],
        "source": post["source"].split("\n")[0],
        "change": int(post["updated_at"].timestamp()),
        "owner": "danbooru",
        "creator_id": 6000 + post["post_id"] % 90_000,
        "parent_id": post["parent_id"] or 0,
        "sample": int(post["width"] > 850),
        "preview_height": 250,
        "preview_width": 250,
        "tags": _tag_string(post),
        "title": "",
        "has_notes": "false",
        "has_comments": "false",
        "file_url": urls["file_url"],
        "preview_url": urls["preview_url"],
        "sample_url": sample_url,
        "sample_height": sample_height,
        "sample_width": sample_width,
        "status": _status(post),
        "post_locked": 0,
        "has_children": "false",
    }


def write_json_pages(posts: pl.DataFrame, inbox: Path) -> list[Written]:
    rows = posts.sort("post_id", descending=True).to_dicts()
    written = []
    for page, start in enumerate(range(0, len(rows), PAGE_SIZE), 1):
        chunk = [json_record(p) for p in rows[start : start + PAGE_SIZE]]
        payload = {
            "@attributes": {"limit": PAGE_SIZE, "offset": start, "count": len(rows)},
            "post": chunk,
        }
        path = write_json(inbox / page_name("posts-2026-11-01", page, "json"), payload)
        written.append(Written(path, "gelbooru", "gelbooru_json", "json", len(chunk)))
    return written


def xml_attributes(post: dict) -> dict[str, str]:
    urls = _urls(post)
    return {
        "height": str(post["height"]),
        "score": str(post["score"]),
        "file_url": urls["file_url"],
        "parent_id": str(post["parent_id"] or ""),
        "sample_url": urls["file_url"],
        "sample_width": str(post["width"]),
        "sample_height": str(post["height"]),
        "preview_url": urls["preview_url"],
        "rating": post["rating_raw"],
        "tags": f" {_tag_string(post)} ",
        "id": str(post["post_id"]),
        "width": str(post["width"]),
        "change": str(int(post["updated_at"].timestamp())),
        "md5": post["md5"],
        "creator_id": str(6000 + post["post_id"] % 90_000),
        "has_children": "false",
        "created_at": ctime_local(post["created_at"]),
        "status": _status(post),
        "source": post["source"].split("\n")[0],
        "has_notes": "false",
        "has_comments": "false",
        "preview_width": "150",
        "preview_height": "150",
    }


def write_xml(posts: pl.DataFrame, inbox: Path) -> Written:
    rows = posts.sort("post_id", descending=True).to_dicts()
    root = ET.Element("posts", {"count": str(len(rows)), "offset": "0"})
    for post in rows:
        ET.SubElement(root, "post", xml_attributes(post))
    data = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    path = write_bytes(inbox / "index-2017-06-03.xml", data)
    return Written(path, "gelbooru", "gelbooru_xml", "xml", len(rows))
