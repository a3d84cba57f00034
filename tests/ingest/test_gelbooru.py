import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from assets.ingest.formats import ReadOptions, UnknownFormat, detect
from assets.ingest.gelbooru import MalformedXML
from assets.ingest.reader import QuarantineExceeded
from tests.conftest import shared_path
from tests.ingest.readback import assert_read_back, demo_truth, ingest

FIXTURE = "fixtures/booru/gelbooru/booru-rs_gelbooru_posts_2023.json"
CATEGORY_LISTS = ("artist_tags", "character_tags", "copyright_tags", "species_tags", "meta_tags")


def fixture_posts() -> list[dict]:
    return json.loads(shared_path(FIXTURE).read_text())["post"]


def write(tmp_path: Path, name: str, payload) -> Path:
    path = tmp_path / name
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return path


def page(posts) -> dict:
    return {"@attributes": {"limit": 100, "offset": 0, "count": 6877}, "post": posts}


def xml_post(post_id: str | None, **attributes: str) -> str:
    fields = {
        "id": post_id,
        "md5": f"{int(post_id or 0):032x}",
        "rating": "s",
        "score": "3",
        "created_at": "Sat Jun 03 10:21:07 -0500 2017",
        "change": "1496503267",
        "width": "800",
        "height": "600",
        "parent_id": "",
        "status": "active",
        "tags": " 1girl  solo ",
        "source": "",
        "file_url": f"https://img.gelbooru.com/images/ab/cd/{post_id}.png",
        **attributes,
    }
    return "<post " + " ".join(f'{k}="{v}"' for k, v in fields.items() if v is not None) + "/>"


def xml_page(*posts: str) -> str:
    body = "\n".join(posts)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<posts count="9" offset="0">\n{body}\n</posts>'


# --- JSON API --------------------------------------------------------------------------------


def test_json_fixture_from_2023(tmp_path):
    path = shared_path(FIXTURE)
    assert detect(path).name == "gelbooru_json" and detect(path).site == "gelbooru"
    report, posts, quarantine, _ = ingest(path, tmp_path)
    assert report.posts == 10 and quarantine.height == 0
    post = posts.filter(pl.col("post_id") == 8333903).row(0, named=True)
    assert post["md5"] == "9de2b8efd300f1aaf8ba84ce5d8205e1"
    assert (post["rating"], post["rating_raw"], post["score"]) == ("s", "sensitive", 8)
    assert post["created_at"] == datetime(2023, 3, 15, 14, 46, 20, tzinfo=UTC)
    assert post["updated_at"] == datetime.fromtimestamp(1678891583, UTC)
    assert (post["width"], post["height"], post["file_ext"]) == (3600, 5100, "jpg")
    assert len(post["tags"]) == 34 and "kafuu_chino" in post["tags"]
    assert post["source"] == "https://www.pixiv.net/artworks/105463162"
    assert post["parent_id"] is None and (post["is_deleted"], post["is_pending"]) == (False, False)
    assert all(post[c] is None for c in ("up_votes", "down_votes", "favorites", "file_size"))
    assert all(post[c] is None for c in CATEGORY_LISTS)
    assert set(posts["rating"]) == {"g", "s", "q", "e"}
    assert dict(posts.select("post_id", "file_ext").iter_rows())[8315396] == "jpeg"


def test_json_tags_are_unescaped(tmp_path):
    _, posts, _, _ = ingest(shared_path(FIXTURE), tmp_path)
    tags = posts.filter(pl.col("post_id") == 8299561)["tags"][0].to_list()
    assert ">_<" in tags and not any("&" in t for t in tags)  # the file has &gt;_&lt;


def test_a_single_post_page(tmp_path):
    one = write(tmp_path, "one.json", page(fixture_posts()[0]))
    assert ingest(one, tmp_path)[1]["post_id"].to_list() == [8333903]


# The empty and the broken page are written here whole: they need no shared fixture.


def test_an_empty_page_loads_nothing(tmp_path):
    # What the API answers past the last page: attributes, no "post" key at all.
    empty = write(tmp_path, "empty.json", {"@attributes": {"limit": 100, "offset": 0, "count": 0}})
    assert detect(empty).name == "gelbooru_json"
    report, posts, quarantine, _ = ingest(empty, tmp_path)
    assert (report.records, posts.height, quarantine.height) == (0, 0, 0)


def test_a_broken_page_is_refused(tmp_path):
    broken = write(tmp_path, "broken.json", '{"@attributes": {"limit": 100}, "post": [{"id": 1')
    with pytest.raises(QuarantineExceeded, match=r"not JSON: Expecting .* \(line 1, column \d+\)"):
        ingest(broken, tmp_path)


def test_bad_json_records_are_quarantined_and_the_rest_loads(tmp_path):
    posts = fixture_posts()
    posts[1] = {**posts[1], "id": "8333860x"}
    posts[2] = {**posts[2], "change": "soon"}
    posts[3] = {**posts[3], "rating": "safe-ish"}
    path = write(tmp_path, "page.json", page(posts))
    report, read, quarantine, _ = ingest(path, tmp_path, threshold=0.5)
    assert read.height == 7 and 8333860 not in read["post_id"]
    assert quarantine.select("record", "reason").sort("record").rows() == [
        (2, "post_id is not an integer: '8333860x'"),
        (3, "updated_at is not a timestamp: 'soon'"),
        (4, "unknown rating 'safe-ish'"),
    ]


def test_a_page_whose_post_field_is_not_posts_is_refused(tmp_path):
    path = write(tmp_path, "page.json", page("nothing here"))
    with pytest.raises(QuarantineExceeded, match='no "post" list or object'):
        ingest(path, tmp_path)


# --- legacy XML ------------------------------------------------------------------------------


def test_legacy_xml(tmp_path):
    text = xml_page(
        xml_post("10", rating="s", parent_id="", status="active"),
        xml_post("11", rating="q", parent_id="10", status="deleted", tags=" a&amp;b  c "),
        xml_post("12", rating="e", parent_id="0", status="pending", file_url="https://x/y.JPEG"),
    )
    path = write(tmp_path, "index.xml", text)
    assert detect(path).name == "gelbooru_xml"
    _, posts, quarantine, _ = ingest(path, tmp_path)
    assert quarantine.height == 0
    rows = {r["post_id"]: r for r in posts.iter_rows(named=True)}
    assert [(rows[i]["rating"], rows[i]["rating_raw"]) for i in (10, 11, 12)] == [
        ("g", "s"),
        ("q", "q"),
        ("e", "e"),
    ]  # the legacy "s" is safe: today's general
    assert [rows[i]["parent_id"] for i in (10, 11, 12)] == [None, 10, None]
    assert [(rows[i]["is_deleted"], rows[i]["is_pending"]) for i in (10, 11, 12)] == [
        (False, False),
        (True, False),
        (False, True),
    ]
    assert rows[10]["tags"] == ["1girl", "solo"] and rows[11]["tags"] == ["a&b", "c"]
    assert [rows[i]["file_ext"] for i in (10, 12)] == ["png", "jpeg"]
    assert rows[10]["created_at"] == datetime(2017, 6, 3, 15, 21, 7, tzinfo=UTC)
    assert rows[10]["updated_at"] == datetime.fromtimestamp(1496503267, UTC)
    assert rows[10]["up_votes"] is None and rows[10]["artist_tags"] is None


def test_an_xml_post_without_an_id_is_quarantined_and_the_rest_loads(tmp_path):
    path = write(tmp_path, "index.xml", xml_page(xml_post("10"), xml_post(None), xml_post("12")))
    _, posts, quarantine, _ = ingest(path, tmp_path, threshold=0.5)
    assert posts["post_id"].to_list() == [10, 12]
    assert quarantine.select("record", "reason").rows() == [(2, "missing post_id")]
    assert quarantine["raw"][0].startswith("<post md5=") and ' id="' not in quarantine["raw"][0]


def test_malformed_xml_is_refused_naming_the_line(tmp_path):
    text = xml_page(xml_post("10"), xml_post("11"), '<post id="12" md5=oops/>', xml_post("13"))
    path = write(tmp_path, "index.xml", text)
    with pytest.raises(MalformedXML, match=r"line 5, column 19 \(after post 2\): not well-formed"):
        ingest(path, tmp_path)
    assert not (tmp_path / "index.xml.posts.parquet").exists()  # nothing of it loaded
    truncated = write(tmp_path, "cut.xml", text[: text.index('<post id="12"')])
    with pytest.raises(UnknownFormat, match="cut.xml is not well-formed XML .* no element found"):
        ingest(truncated, tmp_path)


@pytest.mark.parametrize("batch_rows", [1, 2, 100_000])
def test_xml_batches_and_gzip_do_not_change_what_is_read(tmp_path, batch_rows):
    text = xml_page(*(xml_post(str(i)) for i in range(1, 6)), xml_post(None))
    path = tmp_path / "index.xml.gz"
    path.write_bytes(gzip.compress(text.encode()))
    _, posts, quarantine, _ = ingest(
        path, tmp_path, threshold=0.5, options=ReadOptions(batch_rows=batch_rows)
    )
    assert posts["post_id"].to_list() == [1, 2, 3, 4, 5]
    assert quarantine.select("record", "reason").rows() == [(6, "missing post_id")]


def test_xml_with_fields_as_child_elements(tmp_path):
    post = (
        "<post><id>7</id><created_at>Sat Jun 03 10:21:07 -0500 2017</created_at>"
        "<rating>general</rating><tags>a b</tags><change>1496503267</change>"
        "<image>abc.gif</image><parent_id>0</parent_id><status>active</status></post>"
    )
    path = write(tmp_path, "index.xml", xml_page(post))
    _, posts, _, _ = ingest(path, tmp_path)
    read = posts.select("post_id", "rating", "file_ext", "parent_id", "updated_at").row(0)
    assert read == (7, "g", "gif", None, datetime.fromtimestamp(1496503267, UTC))


def test_other_sites_files_are_not_taken_for_gelbooru():
    for name in (
        "derpibooru/grabber_derpibooru_search_2020.json",
        "danbooru/grabber_danbooru_posts_2020.json",
        "e621/grabber_e621_posts_2021.json",
    ):
        with pytest.raises(UnknownFormat):
            detect(shared_path(f"fixtures/booru/{name}"), site="gelbooru")


# --- the demo dataset ------------------------------------------------------------------------

COMPARED = (
    "post_id",
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
    "is_pending",
    "parent_id",
    "created_at",
    "updated_at",
    "source",
    "tags",
)
CATEGORIES = ("general", "artist", "character", "copyright", "meta")


def _truth(layout, kind: str) -> pl.DataFrame:
    return (
        demo_truth(layout, kind)
        .with_columns(
            pl.lit(None, pl.Int64).alias(c) for c in ("up_votes", "down_votes", "favorites")
        )
        .with_columns(
            created_at=pl.col("created_at").dt.truncate("1s"),  # Gelbooru writes whole seconds
            updated_at=pl.col("updated_at").dt.truncate("1s"),
            source=pl.col("source").str.split("\n").list.first(),
            tags=pl.concat_list(f"{c}_tags" for c in CATEGORIES).list.unique().list.sort(),
        )
    )


def _compare(read: pl.DataFrame, truth: pl.DataFrame) -> None:
    assert_read_back(read.with_columns(pl.col("tags").list.sort()), truth, COMPARED)
    assert read.select(CATEGORY_LISTS).null_count().row(0) == (read.height,) * 5


def test_demo_json_pages_read_back_as_written(demo_layout, tmp_path):
    pages = sorted((demo_layout.inbox / "gelbooru").glob("posts-*.json"))
    results = [ingest(p, tmp_path) for p in pages]
    assert len(results) == 3 and all(r[2].height == 0 for r in results)
    _compare(pl.concat(r[1] for r in results), _truth(demo_layout, "gelbooru_json"))


@pytest.mark.parametrize("batch_rows", [7, 100_000])
def test_demo_legacy_xml_reads_back_as_written(demo_layout, tmp_path, batch_rows):
    path = demo_layout.inbox / "gelbooru" / "index-2017-06-03.xml"
    options = ReadOptions(batch_rows=batch_rows)
    report, posts, quarantine, _ = ingest(path, tmp_path, options=options)
    assert report.format == "gelbooru_xml" and quarantine.height == 0
    truth = _truth(demo_layout, "gelbooru_xml")
    _compare(posts, truth)
    assert set(truth["rating_raw"]) == {"s", "q", "e"} and "s" not in set(posts["rating"])
