"""Danbooru's formats: `/posts.json` pages (and one single-post file) and a Danbooru2021-style
metadata dump (JSON lines, numbers as strings, tags with categories, favourites as user ids)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from scoretag.demo.writers.common import (
    Written,
    iso_local,
    page_name,
    tag_id,
    utc_text,
    write_bytes,
    write_json,
)

PAGE_SIZE = 200  # Danbooru's maximum `limit`
CATEGORY_IDS = {"general": 0, "artist": 1, "copyright": 3, "character": 4, "meta": 5}
EPOCH_NULL = "1970-01-01 00:00:00 UTC"  # how Danbooru2021 writes a missing timestamp


def _tag_string(tags: list[str]) -> str:
    return " ".join(sorted(tags))


def _all_tags(post: dict) -> list[str]:
    return [t for c in CATEGORY_IDS for t in post[f"{c}_tags"]]


def api_record(post: dict) -> dict:
    md5, ext = post["md5"], post["file_ext"]
    record = {
        "id": post["post_id"],
        "created_at": iso_local(post["created_at"]),
        "uploader_id": 400_000 + post["post_id"] % 90_000,
        "score": post["score"],
        "source": post["source"].split("\n")[0],
        "md5": md5,
        "last_comment_bumped_at": None,
        "rating": post["rating_raw"],
        "image_width": post["width"],
        "image_height": post["height"],
        "tag_string": _tag_string(_all_tags(post)),
        "is_note_locked": False,
        "fav_count": post["favorites"],
        "file_ext": ext,
        "last_noted_at": None,
        "is_rating_locked": False,
        "parent_id": post["parent_id"],
        "has_children": False,
        "approver_id": None,
        "file_size": post["file_size"],
        "is_status_locked": False,
        "pool_string": "",
        "up_score": post["up_votes"],
        "down_score": -post["down_votes"],
        "is_pending": post["is_pending"],
        "is_flagged": False,
        "is_deleted": post["is_deleted"],
        "updated_at": iso_local(post["updated_at"]),
        "is_banned": post["is_banned"],
        "pixiv_id": None,
        "last_commented_at": None,
        "has_active_children": False,
        "bit_flags": 0,
        "has_large": post["width"] > 850,
        "has_visible_children": False,
        "is_favorited": False,
    }
    for category in CATEGORY_IDS:
        tags = post[f"{category}_tags"]
        record[f"tag_count_{category}"] = len(tags)
        record[f"tag_string_{category}"] = _tag_string(tags)
    record["tag_count"] = len(_all_tags(post))
    if post["is_banned"]:  # Danbooru hides the file of banned posts from the API
        del record["md5"]
    else:
        shard = f"{md5[:2]}/{md5[2:4]}/{md5}"
        original = f"https://cdn.donmai.us/original/{shard}.{ext}"
        sample = f"https://cdn.donmai.us/sample/{md5[:2]}/{md5[2:4]}/sample-{md5}.jpg"
        record["file_url"] = original
        # Without a sample (small images), large_file_url is the original itself.
        record["large_file_url"] = sample if record["has_large"] else original
        record["preview_file_url"] = f"https://cdn.donmai.us/180x180/{shard}.jpg"
    return record


def dump_record(post: dict, rng: np.random.Generator) -> dict:
    """A Danbooru2021 record: every number a string, `favs` a list of user ids."""
    tags = [
        {"id": str(tag_id(t)), "name": t, "category": str(cat_id)}
        for category, cat_id in CATEGORY_IDS.items()
        for t in post[f"{category}_tags"]
    ]
    tags.sort(key=lambda t: t["name"])
    favs = rng.choice(900_000, size=post["favorites"], replace=False) + 1
    return {
        "id": str(post["post_id"]),
        "created_at": utc_text(post["created_at"], " UTC"),
        "uploader_id": str(65_000 + post["post_id"] % 500_000),
        "score": str(post["score"]),
        "source": post["source"].split("\n")[0],
        "md5": post["md5"],
        "last_commented_at": EPOCH_NULL,
        "rating": post["rating_raw"],
        "image_width": str(post["width"]),
        "image_height": str(post["height"]),
        "is_note_locked": False,
        "file_ext": post["file_ext"],
        "last_noted_at": EPOCH_NULL,
        "is_rating_locked": False,
        "parent_id": str(post["parent_id"] or 0),
        "has_children": False,
        "approver_id": "0",
        "file_size": str(post["file_size"]),
        "is_status_locked": False,
        "up_score": str(post["up_votes"]),
        "down_score": str(-post["down_votes"]),
        "is_pending": post["is_pending"],
        "is_flagged": False,
        "is_deleted": post["is_deleted"],
        "updated_at": utc_text(post["updated_at"], " UTC"),
        "is_banned": post["is_banned"],
        "pixiv_id": "0",
        "tags": tags,
        "pools": [],
        "favs": [str(f) for f in favs],
    }


def write_api(posts: pl.DataFrame, inbox: Path) -> list[Written]:
    """Newest first, as the API pages them; the oldest post also as a single-object file."""
    rows = posts.sort("post_id", descending=True).to_dicts()
    single, rows = rows[-1], rows[:-1]
    written = []
    for page, start in enumerate(range(0, len(rows), PAGE_SIZE), 1):
        chunk = [api_record(p) for p in rows[start : start + PAGE_SIZE]]
        path = write_json(inbox / page_name("posts-2026-11-01", page, "json"), chunk)
        written.append(Written(path, "danbooru", "danbooru_api", "json", len(chunk)))
    path = write_json(inbox / f"post-{single['post_id']}.json", api_record(single))
    written.append(Written(path, "danbooru", "danbooru_api", "json", 1))
    return written


def write_dump(posts: pl.DataFrame, inbox: Path, rng: np.random.Generator) -> Written:
    """One JSON-lines shard in id order, with two broken lines a real dump can hold."""
    lines = [json.dumps(dump_record(p, rng)) for p in posts.sort("post_id").to_dicts()]
    cut_at, bad_id_at = len(lines) // 3, 2 * len(lines) // 3
    truncated = lines[cut_at][: int(len(lines[cut_at]) * 0.6)]
    bad_id = json.loads(lines[bad_id_at])
    bad_id["id"] = "n/a"
    lines.insert(bad_id_at, json.dumps(bad_id))
    lines.insert(cut_at, truncated)
    skipped = [
        {"record": cut_at + 1, "reason": "malformed JSON (a truncated line)"},
        {"record": bad_id_at + 2, "reason": "id is not an integer"},
    ]
    path = write_bytes(
        inbox / "danbooru2021-posts000000000000.jsonl", ("\n".join(lines) + "\n").encode()
    )
    return Written(path, "danbooru", "danbooru_dump", "jsonl", posts.height, skipped)
