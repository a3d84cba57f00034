"""Philomena's format (Derpibooru and its siblings): `/api/v1/json/search/images` pages
(`{"images": [...]}`), one `{"image": {...}}` file, and the stubs it returns for hidden and
duplicate images."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl

from scoretag.demo.writers.common import Written, page_name, tag_id, write_json

PAGE_SIZE = 50  # Philomena's maximum `per_page`
STUBS = 10
DELETION_REASONS = (
    "Rule #1 - Artist requested takedown",
    "Rule #6 - Low quality",
    "Rule #9 - Off-topic",
)
RENDITIONS = ("large", "medium", "small", "tall", "thumb", "thumb_small", "thumb_tiny")
MIME = {
    "jpg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
    "webm": "video/webm",
}


def wilson(up: int, down: int, z: float = 2.57583) -> float:
    """Philomena's `wilson_score`: the Wilson lower bound at 99% confidence."""
    n = up + down
    if n == 0:
        return 0.0
    p = up / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt((p * (1 - p) + z * z / (4 * n)) / n)
    return (centre - margin) / (1 + z * z / n)


def _stamp(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def _tags(post: dict) -> list[str]:
    order = ("general", "species", "character", "copyright", "meta", "artist")
    return list(dict.fromkeys(t for c in order for t in post[f"{c}_tags"]))


def _slug(tags: list[str]) -> str:
    """The tag part of a view_url's file name (`safe_artist-colon-x_pony`), cut short."""
    return "_".join(t.replace(":", "-colon-").replace(" ", "+") for t in tags)[:150]


def representations(post: dict) -> tuple[dict[str, str], str]:
    """(representations, view_url): Philomena files an image under its upload day, the full
    image by id and format, the renditions in a folder named by the id."""
    ext, pid, made = post["file_ext"], post["post_id"], post["created_at"]
    day = f"{made.year}/{made.month}/{made.day}"
    shown = {"full": f"https://derpicdn.net/img/view/{day}/{pid}.{ext}"}
    for name in RENDITIONS:
        shown[name] = f"https://derpicdn.net/img/{day}/{pid}/{name}.{ext}"
    view = f"https://derpicdn.net/img/view/{day}/{pid}__{_slug(_tags(post))}.{ext}"
    return shown, view


def image_record(post: dict) -> dict:
    tags = _tags(post)
    ext, pid, made = post["file_ext"], post["post_id"], post["created_at"]
    shown, view = representations(post)
    return {
        "mime_type": MIME.get(ext, "image/jpeg"),
        "tag_ids": sorted(map(tag_id, tags)),
        "comment_count": 0,
        "score": post["score"],
        "downvotes": post["down_votes"],
        "thumbnails_generated": True,
        "wilson_score": wilson(post["up_votes"], post["down_votes"]),
        "source_url": post["source"].split("\n")[0] or None,
        "aspect_ratio": post["width"] / post["height"],
        "sha512_hash": post["sha512"],
        "orig_sha512_hash": post["sha512"],
        "first_seen_at": _stamp(made),
        "height": post["height"],
        "hidden_from_users": False,
        "intensities": {"ne": 40.0, "nw": 40.0, "se": 40.0, "sw": 40.0},
        "name": f"{pid}.{ext}",
        "spoilered": False,
        "description": "",
        "uploader": None,
        "tag_count": len(tags),
        "processed": True,
        "representations": shown,
        "width": post["width"],
        "id": pid,
        "deletion_reason": None,
        "view_url": view,
        "created_at": _stamp(made),
        "updated_at": _stamp(post["updated_at"]),
        "faves": post["favorites"],
        "upvotes": post["up_votes"],
        "format": ext,
        "duplicate_of": None,
        "uploader_id": None,
        "tags": tags,
        "animated": post["is_video"],
        "duration": 8.0 if post["is_video"] else 0.04,
    }


def stub_records(posts: list[dict], rng: np.random.Generator) -> list[dict]:
    """Hidden and duplicate images: only ids, dates, `duplicate_of` and `deletion_reason`."""
    taken = {p["post_id"] for p in posts}
    stubs = []
    for i, post in enumerate(rng.choice(posts, size=STUBS, replace=False)):
        stub_id = post["post_id"] + 1
        while stub_id in taken:
            stub_id += 1
        taken.add(stub_id)
        made = post["created_at"] + timedelta(minutes=int(rng.integers(1, 600)))
        duplicate = i % 2 == 0
        stubs.append(
            {
                "id": stub_id,
                "created_at": _stamp(made),
                "updated_at": _stamp(made),
                "first_seen_at": _stamp(made),
                "duplicate_of": post["post_id"] if duplicate else None,
                "deletion_reason": None if duplicate else str(rng.choice(DELETION_REASONS)),
                "hidden_from_users": True,
            }
        )
    return stubs


def write_search(posts: pl.DataFrame, inbox: Path, rng: np.random.Generator) -> list[Written]:
    dicts = posts.sort("post_id", descending=True).to_dicts()
    single, dicts = dicts[-1], dicts[:-1]
    stubs = stub_records(dicts, rng)
    records = sorted([image_record(p) for p in dicts] + stubs, key=lambda r: -r["id"])
    stub_ids = {s["id"]: s for s in stubs}
    written = []
    for page, start in enumerate(range(0, len(records), PAGE_SIZE), 1):
        chunk = records[start : start + PAGE_SIZE]
        payload = {"images": chunk, "interactions": [], "total": len(records)}
        path = write_json(inbox / page_name("search-2026-11-01", page, "json"), payload)
        skipped = [
            {"record": n, "reason": _stub_reason(stub_ids[r["id"]])}
            for n, r in enumerate(chunk, 1)
            if r["id"] in stub_ids
        ]
        written.append(
            Written(
                path, "derpibooru", "derpibooru_api", "json", len(chunk) - len(skipped), skipped
            )
        )
    path = write_json(inbox / f"image-{single['post_id']}.json", {"image": image_record(single)})
    written.append(Written(path, "derpibooru", "derpibooru_api", "json", 1))
    return written


def _stub_reason(stub: dict) -> str:
    if stub["duplicate_of"] is not None:
        return f"duplicate of {stub['duplicate_of']}"
    return f"hidden: {stub['deletion_reason']}"
