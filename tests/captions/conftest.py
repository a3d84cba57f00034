"""A small scored catalog written by hand, with image files, for the captions stage.

Head `h1` is active. Posts `danbooru:i` and `e621:i` (i = 1..10) score i/10 - 0.05, so under
the absolute (decile) cut-points post i lands in bucket max(1, i - 1). Odd ids are rated g,
even ones e. danbooru:3 and e621:3 share an image (e621's copy is
canonical); danbooru:9 is deleted; e621:10 has no image file. `derpibooru:1` has no md5
(its image is found by sha512) and carries a Philomena `artist:` tag.
"""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest
from PIL import Image

from assets.catalog.statements import schema
from orchestration.storage import Layout

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HEAD = "h1"


def image_bytes(key: str) -> bytes:
    """A small PNG (4x3) coloured by `key`: different bytes for each image, a size that the
    catalog's width and height are not."""
    colour = tuple(hashlib.md5(key.encode()).digest()[:3])
    buffer = io.BytesIO()
    Image.new("RGB", (4, 3), colour).save(buffer, "PNG")
    return buffer.getvalue()


PONY = image_bytes("pony picture")


def _md5(key: str) -> str:
    return hashlib.md5(key.encode()).hexdigest()


def _post(site: str, i: int, **extra) -> dict:
    key = f"{site}:{i}"
    md5 = _md5("shared" if i == 3 else key)
    return {
        "post_key": key,
        "site": site,
        "post_id": i,
        "image_key": md5,
        "md5": md5,
        "rating": "g" if i % 2 else "e",
        "norm_score": i / 10,
        "is_canonical": not (i == 3 and site == "danbooru"),
        "is_deleted": site == "danbooru" and i == 9,
        "width": 100 + i,
        "height": 200 + i,
        "file_ext": "png",
        "tags": ["1girl", f"{site}_tag_{i}", "long_hair", "highres"],
        "artist_tags": [f"artist_{i}"],
        "character_tags": ["hatsune_miku"] if i % 2 else [],
        "copyright_tags": ["vocaloid"] if i % 2 else [],
        "species_tags": None,
        "meta_tags": ["highres"],
        "score": i / 10 - 0.05,
        **extra,
    }


def catalog_posts() -> list[dict]:
    posts = [_post(site, i) for site in ("danbooru", "e621") for i in range(1, 11)]
    sha512 = hashlib.sha512(PONY).hexdigest()
    posts.append(
        _post(
            "derpibooru",
            1,
            md5=None,
            image_key=f"sha512:{sha512[:32]}",
            tags=["open mouth", "artist:yuta", "pony", "safe"],
            artist_tags=["yuta"],
            character_tags=[],
            copyright_tags=None,
            meta_tags=None,
            score=0.55,
        )
    )
    return posts


def write_catalog(path: Path, posts: list[dict], head: str = HEAD) -> None:
    con = duckdb.connect(str(path))
    for text in schema():
        con.execute(text)
    frame = pl.DataFrame(posts).with_columns(
        created_at=pl.lit(T0), loaded_at=pl.lit(T0), immature=pl.lit(False)
    )
    con.register("new_posts", frame.drop("score").to_arrow())
    con.execute("INSERT INTO posts BY NAME SELECT * FROM new_posts")
    con.execute(
        "INSERT INTO heads (version, head_type, active, activated_at, registered_at) "
        "VALUES (?, 'ridge', true, ?, ?)",
        [head, T0, T0],
    )
    scores = frame.select("post_key", "image_key", "score")
    con.register("new_scores", scores.to_arrow())
    con.execute(
        "INSERT INTO scores BY NAME SELECT post_key, image_key, $head AS head_version, score, "
        "NULL AS percentile, $t AS scored_at FROM new_scores",
        {"head": head, "t": T0},
    )
    con.close()


def add_scores(path: Path, posts: list[dict], head: str = HEAD) -> None:
    """More posts, scored: the catalog grows."""
    con = duckdb.connect(str(path))
    frame = pl.DataFrame(posts).with_columns(
        created_at=pl.lit(T0), loaded_at=pl.lit(T0), immature=pl.lit(False)
    )
    con.register("new_posts", frame.drop("score").to_arrow())
    con.execute("INSERT INTO posts BY NAME SELECT * FROM new_posts")
    con.register("new_scores", frame.select("post_key", "image_key", "score").to_arrow())
    con.execute(
        "INSERT INTO scores BY NAME SELECT post_key, image_key, $head AS head_version, score, "
        "NULL AS percentile, $t AS scored_at FROM new_scores",
        {"head": head, "t": T0},
    )
    con.close()


def write_images(root: Path, posts: list[dict]) -> None:
    """A small file per image (named by md5; the Philomena one by its own name), but none
    for e621:10."""
    root.mkdir(parents=True, exist_ok=True)
    for post in posts:
        if post["post_key"] == "e621:10":
            continue
        if post["md5"] is None:
            (root / "pony.png").write_bytes(PONY)
        else:
            (root / f"{post['md5']}.png").write_bytes(image_bytes(post["md5"]))


def sha512_table() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "site": ["derpibooru"],
            "post_id": [1],
            "sha512": [hashlib.sha512(PONY).hexdigest()],
        }
    )


@pytest.fixture
def home(tmp_path: Path) -> Layout:
    """A storage root holding the catalog and the images."""
    layout = Layout(home=tmp_path / "home").ensure()
    posts = catalog_posts()
    write_catalog(layout.catalog, posts)
    write_images(layout.images, posts)
    return layout
