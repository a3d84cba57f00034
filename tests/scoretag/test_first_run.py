"""`scoretag run` on little data: one fresh danbooru API page, every post too young to have a
mature score, no images and no labels. The run finishes with a summary that says what is
missing and why (it used to end in a TypeError formatting a null quantile)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from scoretag.cli import cli
from tests.conftest import shared_path

DANBOORU_PAGE = "fixtures/booru/danbooru/grabber_danbooru_posts_2020.json"


def _young_page(posts: int = 12) -> list[dict]:
    """A danbooru /posts.json page as the API gives it an hour after these uploads."""
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    page = []
    for i in range(posts):
        made = (now - timedelta(minutes=5 * i)).isoformat(timespec="milliseconds")
        page.append(
            {
                "id": 9_000_000 + i,
                "created_at": made,
                "updated_at": made,
                "score": i % 4,
                "up_score": i % 4,
                "down_score": 0,
                "fav_count": i % 3,
                "rating": "gsqe"[i % 4],
                "md5": f"{i:032x}",
                "file_ext": "png",
                "image_width": 800,
                "image_height": 600,
                "tag_string": "1girl solo smile",
                "tag_string_general": "1girl solo smile",
                "tag_string_artist": "some_artist",
                "tag_string_character": "",
                "tag_string_copyright": "original",
                "tag_string_meta": "highres",
                "is_deleted": False,
                "source": "",
            }
        )
    return page


def _run_on(home: Path, page: Path) -> str:
    inbox = home / "inbox" / "danbooru"
    inbox.mkdir(parents=True)
    shutil.copy(page, inbox / page.name)
    result = CliRunner().invoke(cli, ["--profile", "demo", "--home", str(home), "run"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == 1, result.output  # aesthetic_head failed: no labels
    return result.output


def _assert_says_what_is_missing(output: str, posts: int) -> None:
    for expected in (
        f"no norm_score for {posts} of {posts} posts: younger than [normalize] maturity_days (30)",
        f"no embeddings: no image of the {posts} posts was embedded",
        "the rating pool is empty",
        "no head trained: 0 of [head] min_labels (50) labelled posts have embeddings",
        "scoretag run --job catalog",
        "catalog not scored: no active head",
        "aesthetic_head: 0 labelled posts have embeddings; a head needs at least 50 "
        "([head] min_labels)",
    ):
        assert expected in output, expected
    # the deciles of a site whose posts have no norm_score yet show as "-"
    assert f"{posts} posts have no norm_score yet (shown as -)" in output
    assert "Traceback" not in output and "TypeError" not in output


def test_a_generated_page_of_young_posts(tmp_path: Path):
    page = tmp_path / "posts-young.json"
    page.write_text(json.dumps(_young_page(12)))
    _assert_says_what_is_missing(_run_on(tmp_path / "home", page), 12)


def test_the_real_danbooru_api_page(tmp_path: Path):
    page = shared_path(DANBOORU_PAGE)  # 10 posts of 2020-07-26, taken hours after upload
    _assert_says_what_is_missing(_run_on(tmp_path / "home", page), 10)
