"""e621's formats: `/posts.json` pages and the daily db_export (`posts-*.csv.gz`, with the
`tags-*.csv.gz` table that gives each tag its category)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import polars as pl

from scoretag.demo.writers.common import (
    Written,
    gzip_bytes,
    iso_local,
    page_name,
    tag_id,
    utc_text,
    write_bytes,
    write_json,
)

PAGE_SIZE = 320  # e621's maximum `limit`
CATEGORY_IDS = {
    "general": 0,
    "artist": 1,
    "copyright": 3,
    "character": 4,
    "species": 5,
    "invalid": 6,
    "meta": 7,
    "lore": 8,
}
# The db_export header as of 2026: the 2021 layout plus columns added since. Readers must go
# by header name, not position.
CSV_COLUMNS = (
    "id",
    "uploader_id",
    "created_at",
    "md5",
    "source",
    "rating",
    "image_width",
    "image_height",
    "tag_string",
    "locked_tags",
    "fav_count",
    "file_ext",
    "parent_id",
    "change_seq",
    "approver_id",
    "file_size",
    "comment_count",
    "description",
    "duration",
    "updated_at",
    "is_deleted",
    "is_pending",
    "is_flagged",
    "score",
    "up_score",
    "down_score",
    "is_rating_locked",
    "is_status_locked",
    "is_note_locked",
    "bg_color",
)


def _tags(post: dict, category: str) -> list[str]:
    return post.get(f"{category}_tags") or []


def api_record(post: dict) -> dict:
    md5, ext = post["md5"], post["file_ext"]
    shard = f"{md5[:2]}/{md5[2:4]}/{md5}"
    hidden = post["is_deleted"]  # a deleted post comes with no URL for any rendition
    url = None if hidden else f"https://static1.e621.net/data/{shard}.{ext}"
    has_sample = post["width"] > 850
    sample = f"https://static1.e621.net/data/sample/{shard}.jpg" if has_sample else url
    scale = min(1.0, 150 / max(post["width"], post["height"]))
    return {
        "id": post["post_id"],
        "created_at": iso_local(post["created_at"]),
        "updated_at": iso_local(post["updated_at"]),
        "file": {
            "width": post["width"],
            "height": post["height"],
            "ext": ext,
            "size": post["file_size"],
            "md5": md5,
            "url": url,
        },
        "preview": {
            "width": round(post["width"] * scale),
            "height": round(post["height"] * scale),
            "url": None if hidden else f"https://static1.e621.net/data/preview/{shard}.jpg",
        },
        "sample": {
            "has": has_sample,
            "height": post["height"],
            "width": post["width"],
            "url": None if hidden else sample,
            "alternates": {},
        },
        "score": {"up": post["up_votes"], "down": -post["down_votes"], "total": post["score"]},
        "tags": {c: sorted(_tags(post, c)) for c in CATEGORY_IDS},
        "locked_tags": [],
        "change_seq": 30_000_000 + post["post_id"],
        "flags": {
            "pending": post["is_pending"],
            "flagged": False,
            "note_locked": False,
            "status_locked": False,
            "rating_locked": False,
            "deleted": post["is_deleted"],
        },
        "rating": post["rating_raw"],
        "fav_count": post["favorites"],
        "sources": [s for s in post["source"].split("\n") if s],
        "pools": [],
        "relationships": {
            "parent_id": post["parent_id"],
            "has_children": False,
            "has_active_children": False,
            "children": [],
        },
        "approver_id": None,
        "uploader_id": 100_000 + post["post_id"] % 700_000,
        "description": "",
        "comment_count": 0,
        "is_favorited": False,
        "has_notes": False,
        "duration": 12.5 if post["is_video"] else None,
    }


def _flag(value: bool) -> str:
    return "t" if value else "f"


def csv_row(post: dict) -> list[str]:
    tags = sorted(t for c in CATEGORY_IDS for t in _tags(post, c))
    parent = post["parent_id"]
    return [
        str(post["post_id"]),
        str(100_000 + post["post_id"] % 700_000),
        utc_text(post["created_at"]),
        post["md5"],
        post["source"],
        post["rating_raw"],
        str(post["width"]),
        str(post["height"]),
        " ".join(tags),
        "",
        str(post["favorites"]),
        post["file_ext"],
        "" if parent is None else str(parent),
        str(30_000_000 + post["post_id"]),
        "",
        str(post["file_size"]),
        "0",
        "",
        "12.5" if post["is_video"] else "",
        utc_text(post["updated_at"]),
        _flag(post["is_deleted"]),
        _flag(post["is_pending"]),
        "f",
        str(post["score"]),
        str(post["up_votes"]),
        str(-post["down_votes"]),
        "f",
        "f",
        "f",
        "",
    ]


def write_api(posts: pl.DataFrame, inbox: Path) -> list[Written]:
    rows = posts.sort("post_id", descending=True).to_dicts()
    written = []
    for page, start in enumerate(range(0, len(rows), PAGE_SIZE), 1):
        chunk = [api_record(p) for p in rows[start : start + PAGE_SIZE]]
        path = write_json(inbox / page_name("posts-api-2026-11-01", page, "json"), {"posts": chunk})
        written.append(Written(path, "e621", "e621_api", "json", len(chunk)))
    return written


def _csv_text(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def write_export(posts: pl.DataFrame, inbox: Path) -> list[Written]:
    """The posts export, with one row cut short (as a broken export can have), and the tags."""
    dicts = posts.sort("post_id").to_dicts()
    rows = [csv_row(p) for p in dicts]
    broken_at = len(rows) // 2
    rows.insert(broken_at, rows[broken_at][:12])
    skipped = [{"record": broken_at + 1, "reason": "wrong number of fields (12, expected 30)"}]
    posts_path = write_bytes(inbox / "posts-2026-11-01.csv.gz", gzip_bytes(_csv_text(rows)))
    return [
        Written(posts_path, "e621", "e621_csv", "csv.gz", len(dicts), skipped),
        write_tags_table(dicts, inbox),
    ]


def write_tags_table(posts: list[dict], inbox: Path) -> Written:
    counts: dict[tuple[str, int], int] = {}
    for post in posts:
        for category, cat_id in CATEGORY_IDS.items():
            for tag in _tags(post, category):
                counts[(tag, cat_id)] = counts.get((tag, cat_id), 0) + 1
    rows = sorted((tag_id(t), t, c, n) for (t, c), n in counts.items())
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("id", "name", "category", "post_count"))
    writer.writerows(rows)
    path = write_bytes(inbox / "tags-2026-11-01.csv.gz", gzip_bytes(buffer.getvalue().encode()))
    return Written(path, "e621", "e621_tags", "csv.gz", 0)
