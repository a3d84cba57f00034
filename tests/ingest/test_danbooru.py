import json
from datetime import UTC, datetime

import polars as pl
import pytest

from assets.ingest.formats import ReadOptions, detect
from tests.conftest import shared_path
from tests.ingest.readback import assert_read_back, demo_truth, ingest


def test_api_fixture_from_2020_reads_with_the_old_rating_scheme(tmp_path):
    path = shared_path("fixtures/booru/danbooru/grabber_danbooru_posts_2020.json")
    assert detect(path).name == "danbooru_api"
    report, posts, quarantine, _ = ingest(path, tmp_path)
    assert report.posts == 10 and quarantine.height == 0
    first = posts.filter(pl.col("post_id") == 4018204).row(0, named=True)
    assert first["md5"] == "4f39497ef8fcd059984c3b1fe86cf542"
    assert first["created_at"] == datetime(2020, 7, 26, 14, 31, 20, 176000, tzinfo=UTC)
    assert first["rating"] == "g" and first["rating_raw"] == "s"  # 2020's "safe"
    assert (first["score"], first["up_votes"], first["down_votes"], first["favorites"]) == (
        1,
        1,
        0,
        1,
    )
    assert (first["width"], first["height"], first["file_ext"], first["file_size"]) == (
        1037,
        988,
        "png",
        913112,
    )
    assert first["artist_tags"] == ["chagara"]
    assert first["character_tags"] == ["eyjafjalla_(arknights)"]
    assert first["copyright_tags"] == ["arknights"] and first["meta_tags"] == ["commentary"]
    assert len(first["tags"]) == 24 and "sheep_horns" in first["tags"]
    assert first["parent_id"] is None and first["is_deleted"] is False


def test_rating_scheme_can_be_forced(tmp_path):
    path = shared_path("fixtures/booru/danbooru/grabber_danbooru_posts_2020.json")
    _, posts, _, _ = ingest(path, tmp_path, options=ReadOptions(danbooru_rating_scheme="current"))
    assert set(posts["rating"]) == {"s"}


def test_danbooru2021_record(tmp_path):
    path = shared_path("fixtures/booru/danbooru/danbooru2021_metadata_record_from_readme.jsonl")
    assert detect(path).name == "danbooru_dump"
    _, posts, _, _ = ingest(path, tmp_path)
    post = posts.row(0, named=True)
    assert post["post_id"] == 263162 and post["md5"] == "9a0f9e0f08907d12b7d08e46047ae4d8"
    assert post["created_at"] == datetime(2008, 6, 10, 3, 8, 7, 342050, tzinfo=UTC)
    assert post["rating"] == "g" and post["favorites"] == 3  # len(favs)
    assert (post["score"], post["up_votes"], post["down_votes"]) == (1, 1, 0)
    assert (post["width"], post["height"], post["file_size"]) == (797, 794, 110256)
    assert post["parent_id"] is None  # "0" means none
    assert post["artist_tags"] == ["kakinouchi_narumi"]
    assert post["copyright_tags"] == ["vampire_princess_miyu"]
    assert set(post["character_tags"]) == {
        "larva_(vampire_princess_miyu)",
        "miyu_(vampire_princess_miyu)",
    }
    assert len(post["tags"]) == 18 and post["meta_tags"] == []


COMPARED = (
    "md5",
    "rating",
    "rating_raw",
    "score",
    "up_votes",
    "down_votes",
    "favorites",
    "width",
    "height",
    "file_ext",
    "file_size",
    "is_deleted",
    "is_pending",
    "created_at",
)


def _compare(read: pl.DataFrame, truth: pl.DataFrame, api: bool = False) -> None:
    truth = truth.with_columns(
        md5=pl.when(~pl.col("is_banned") | (not api)).then("md5"),  # the API hides banned files
        created_at=pl.col("created_at").dt.truncate("1ms"),
    )
    read = read.with_columns(created_at=pl.col("created_at").dt.truncate("1ms"))
    assert_read_back(read, truth, COMPARED)


def test_demo_api_pages_read_back_as_written(demo_layout, tmp_path):
    inbox = demo_layout.inbox / "danbooru"
    frames = [ingest(p, tmp_path)[1] for p in sorted(inbox.glob("post*.json"))]
    read = pl.concat(frames)
    _compare(read, demo_truth(demo_layout, "danbooru_api"), api=True)
    truth = demo_truth(demo_layout, "danbooru_api").sort("post_id")
    tags = read.sort("post_id").select(
        pl.col("artist_tags").list.sort(), pl.col("meta_tags").list.sort()
    )
    assert tags.equals(
        truth.select(pl.col("artist_tags").list.sort(), pl.col("meta_tags").list.sort())
    )


def test_demo_dump_reads_back_and_quarantines_its_broken_lines(demo_layout, tmp_path):
    path = demo_layout.inbox / "danbooru" / "danbooru2021-posts000000000000.jsonl"
    report, read, quarantine, _ = ingest(path, tmp_path)
    _compare(read, demo_truth(demo_layout, "danbooru_dump"))
    expected = pl.read_parquet(demo_layout.demo / "skipped.parquet").filter(
        pl.col("site") == "danbooru"
    )
    assert sorted(quarantine["record"]) == sorted(expected["record"])
    reasons = dict(quarantine.select("record", "reason").iter_rows())
    assert any(r.startswith("malformed JSON") for r in reasons.values())
    assert "post_id is not an integer: 'n/a'" in reasons.values()
    assert report.quarantined_share < 0.01
    assert set(read["rating_raw"]) == {"s", "q", "e"} and "s" not in set(read["rating"])


def test_lines_that_are_not_objects_are_quarantined(tmp_path):
    good = json.loads(
        shared_path(
            "fixtures/booru/danbooru/danbooru2021_metadata_record_from_readme.jsonl"
        ).read_text()
    )
    lines = [json.dumps(good), "[1, 2]", '"text"', "", json.dumps({**good, "id": "263163"})]
    path = tmp_path / "dump.jsonl"
    path.write_text("\n".join(lines) + "\n")
    report, posts, quarantine, _ = ingest(path, tmp_path, threshold=0.5)
    assert posts["post_id"].to_list() == [263162, 263163]
    assert quarantine.select("record", "reason").rows() == [
        (2, "record is not a JSON object"),
        (3, "record is not a JSON object"),
    ]
    assert quarantine["raw"].to_list() == ["[1, 2]", '"text"']


@pytest.mark.parametrize("batch_rows", [1, 7, 100_000])
def test_batch_size_does_not_change_what_is_read(demo_layout, tmp_path, batch_rows):
    path = demo_layout.inbox / "danbooru" / "danbooru2021-posts000000000000.jsonl"
    _, posts, quarantine, _ = ingest(path, tmp_path, options=ReadOptions(batch_rows=batch_rows))
    assert posts.height == 450 and quarantine.height == 2
