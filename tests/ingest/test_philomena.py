import json
import re
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from assets.ingest.formats import UnknownFormat, detect
from assets.ingest.philomena import rating_tag
from assets.ingest.reader import QuarantineExceeded
from tests.conftest import shared_path
from tests.ingest.readback import assert_read_back, demo_truth, ingest

FIXTURE = "fixtures/booru/derpibooru/grabber_derpibooru_search_2020.json"
SHA512 = (
    "c68573d45d597a76cd612927eb05e6b0cf9f5af17f52ce5b46f9981881581f23"
    "e876a9bd71ad0e0db9ccce814901e05b3713955941f96d572a62a43aac3552b8"
)


def fixture_images() -> list[dict]:
    return json.loads(shared_path(FIXTURE).read_text())["images"]


def write_page(tmp_path: Path, name: str, payload) -> Path:
    path = tmp_path / name
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return path


def test_search_fixture_from_2020(tmp_path):
    path = shared_path(FIXTURE)
    assert detect(path).name == "philomena_api" and detect(path).site == "derpibooru"
    report, posts, quarantine, skipped = ingest(path, tmp_path)
    assert (report.posts, quarantine.height, skipped.height) == (5, 0, 0)
    luna = posts.filter(pl.col("post_id") == 2316404).row(0, named=True)
    assert luna["rating"] == "g" and luna["rating_raw"] == "safe"
    assert (luna["score"], luna["up_votes"], luna["down_votes"], luna["favorites"]) == (1, 1, 0, 0)
    assert luna["md5"] is None and luna["sha512"] == SHA512
    assert luna["created_at"] == datetime(2020, 4, 7, 17, 6, 38, tzinfo=UTC)
    assert luna["updated_at"] == datetime(2020, 4, 7, 17, 7, 13, tzinfo=UTC)
    assert (luna["width"], luna["height"], luna["file_ext"]) == (3508, 2480, "png")
    assert luna["artist_tags"] == ["angelinarichter"] and luna["character_tags"] == []
    assert len(luna["tags"]) == 19 and {"artist:angelinarichter", "safe"} <= set(luna["tags"])
    assert all(luna[c] is None for c in ("copyright_tags", "species_tags", "meta_tags"))
    assert luna["source"].startswith("https://www.deviantart.com/angelinarichter/")
    assert luna["is_deleted"] is False and luna["parent_id"] is None
    video = posts.filter(pl.col("post_id") == 2316400).row(0, named=True)
    assert (video["rating"], video["file_ext"], video["favorites"]) == ("s", "webm", 1)
    assert dict(posts.select("post_id", "rating").iter_rows())[2316401] == "g"


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (["safe", "pony"], "safe"),
        (["safe", "grimdark", "explicit"], "explicit"),  # the strongest wins
        (["suggestive", "questionable"], "questionable"),
        (["grimdark", "semi-grimdark", "grotesque"], None),  # not ratings on their own
        ([], None),
    ],
)
def test_rating_tag(tags, expected):
    assert rating_tag(tags) == expected


def test_rating_comes_from_tags_and_a_missing_one_is_quarantined(tmp_path):
    base = fixture_images()[0]
    images = [
        {**base, "id": 1, "tags": ["grimdark", "safe", "explicit", "artist:a", "artist:b"]},
        {**base, "id": 2, "tags": ["grimdark", "oc:blue moon", "oc"]},
        {**base, "id": 3, "tags": ["semi-grimdark", "suggestive", "oc:blue moon"]},
    ]
    path = write_page(tmp_path, "page.json", {"images": images, "interactions": [], "total": 3})
    _, posts, quarantine, _ = ingest(path, tmp_path, threshold=0.5)
    rows = {r["post_id"]: r for r in posts.iter_rows(named=True)}
    assert (rows[1]["rating"], rows[1]["rating_raw"]) == ("e", "explicit")
    assert rows[1]["artist_tags"] == ["a", "b"] and "grimdark" in rows[1]["tags"]
    assert (rows[3]["rating"], rows[3]["character_tags"]) == ("s", ["oc:blue moon"])
    assert quarantine.select("record", "reason").rows() == [(2, "missing rating")]


def test_one_image_with_the_newer_fields(tmp_path):
    image = {
        **fixture_images()[2],
        "source_urls": ["https://a.example/1", "https://b.example/2"],
        "size": 123456,
        "created_at": "2020-04-07T17:04:28Z",
    }
    path = write_page(tmp_path, "image-2316400.json", {"image": image, "interactions": []})
    assert detect(path).name == "philomena_api"
    _, posts, _, _ = ingest(path, tmp_path)
    post = posts.row(0, named=True)
    assert post["source"] == "https://a.example/1\nhttps://b.example/2"
    assert post["file_size"] == 123456
    assert post["created_at"] == datetime(2020, 4, 7, 17, 4, 28, tzinfo=UTC)


def test_hidden_and_duplicate_stubs_are_skipped(tmp_path):
    stamp = "2020-04-07T17:00:00"
    dates = {"created_at": stamp, "updated_at": stamp, "first_seen_at": stamp}
    stubs = [
        {"id": 7, **dates, "duplicate_of": 5, "deletion_reason": None, "hidden_from_users": True},
        {
            "id": 8,
            **dates,
            "duplicate_of": None,
            "deletion_reason": "Rule #1",
            "hidden_from_users": True,
        },
    ]
    path = write_page(tmp_path, "page.json", {"images": [fixture_images()[0], *stubs]})
    report, posts, quarantine, skipped = ingest(path, tmp_path)
    assert (report.posts, report.quarantined, report.skipped) == (1, 0, 2)
    assert skipped.select("record", "post_id", "reason").rows() == [
        (2, 7, "duplicate of 5"),
        (3, 8, "hidden: Rule #1"),
    ]


def test_bad_records_are_quarantined_and_the_rest_loads(tmp_path):
    images = fixture_images()
    images[1] = {**images[1], "id": "2316401a"}
    images[3] = "not an image"
    path = write_page(tmp_path, "page.json", {"images": images})
    report, posts, quarantine, _ = ingest(path, tmp_path, threshold=0.5)
    assert sorted(posts["post_id"]) == [2316395, 2316400, 2316404]
    assert quarantine.select("record", "reason").rows() == [
        (4, "record is not a JSON object"),
        (2, "post_id is not an integer: '2316401a'"),
    ]
    assert report.quarantined == 2


def test_a_page_that_is_not_json_is_refused_and_the_other_pages_load(tmp_path):
    good = write_page(tmp_path, "p001.json", {"images": fixture_images()})
    cut = write_page(tmp_path, "p002.json", '{"images": [{"id": 1}, ')  # a broken download
    html = write_page(tmp_path, "p003.json", "<html><body>502 Bad Gateway</body></html>")
    reason = "not JSON: Expecting value (line 1, column 24)"
    with pytest.raises(QuarantineExceeded, match=re.escape(f"Top reasons: {reason} (1)")):
        ingest(cut, tmp_path)
    report, posts, quarantine, _ = ingest(cut, tmp_path, threshold=1.0)
    assert (report.posts, report.quarantined, posts.height) == (0, 1, 0)
    assert quarantine.select("record", "reason", "raw").row(0) == (None, reason, cut.read_text())
    with pytest.raises(UnknownFormat, match="not in a format scoretag reads"):
        ingest(html, tmp_path, site="derpibooru")
    assert ingest(good, tmp_path)[0].posts == 5


def test_a_page_without_images_is_refused(tmp_path):
    path = write_page(tmp_path, "page.json", {"data": {"images": []}, "total": 0})
    with pytest.raises(QuarantineExceeded, match="not a Philomena page"):
        ingest(path, tmp_path)


def test_an_empty_search_page_loads_nothing(tmp_path):
    path = write_page(tmp_path, "page.json", {"images": [], "interactions": [], "total": 0})
    report, posts, quarantine, skipped = ingest(path, tmp_path)
    assert (report.records, posts.height, quarantine.height, skipped.height) == (0, 0, 0, 0)


def test_other_sites_files_are_not_taken_for_philomena():
    for name in (
        "gelbooru/booru-rs_gelbooru_posts_2023.json",
        "danbooru/grabber_danbooru_posts_2020.json",
        "e621/grabber_e621_posts_2021.json",
    ):
        path = shared_path(f"fixtures/booru/{name}")
        with pytest.raises(UnknownFormat):
            detect(path, site="derpibooru")


# --- the demo dataset ------------------------------------------------------------------------

COMPARED = (
    "post_id",
    "sha512",
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
    "is_deleted",
    "created_at",
    "updated_at",
    "source",
    "tags",
    "artist_tags",
)
CATEGORIES = ("general", "species", "character", "copyright", "meta", "artist")


def _truth(layout) -> pl.DataFrame:
    return demo_truth(layout, "derpibooru_api").with_columns(
        md5=pl.lit(None, pl.String),  # Philomena gives no md5
        created_at=pl.col("created_at").dt.truncate("1s"),  # the API writes whole seconds
        updated_at=pl.col("updated_at").dt.truncate("1s"),
        source=pl.col("source").str.split("\n").list.first().replace("", None),
        tags=pl.concat_list(f"{c}_tags" for c in CATEGORIES).list.unique().list.sort(),
        artist_tags=pl.col("artist_tags").list.eval(pl.element().str.strip_prefix("artist:")),
    )


def test_demo_pages_read_back_as_written(demo_layout, tmp_path):
    inbox = demo_layout.inbox / "derpibooru"
    results = [ingest(p, tmp_path) for p in sorted(inbox.glob("*.json"))]
    assert len(results) == 9 and all(r[2].height == 0 for r in results)
    read = pl.concat([r[1] for r in results]).with_columns(pl.col("tags").list.sort())
    assert read.height == 350
    assert_read_back(read, _truth(demo_layout), COMPARED)
    # The demo marks a few fresh images pending, but Philomena's API has no such field.
    assert not read["is_pending"].any()


def test_demo_stubs_are_skipped_with_their_reasons(demo_layout, tmp_path):
    inbox = demo_layout.inbox / "derpibooru"
    skipped = pl.concat(ingest(p, tmp_path)[3] for p in sorted(inbox.glob("search-*.json")))
    expected = pl.read_parquet(demo_layout.demo / "skipped.parquet").filter(
        pl.col("site") == "derpibooru"
    )
    assert skipped.height == expected.height == 10
    read = set(skipped.select("source_file", "record", "reason").iter_rows())
    assert read == {
        (Path(f).name, r, why)
        for f, r, why in expected.select("file", "record", "reason").iter_rows()
    }
    assert skipped["post_id"].null_count() == 0
