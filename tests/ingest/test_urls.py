"""raw_posts keeps what locates each image: the site's URLs as they were, and the canonical
URL derived from the site's layout where a file has none, checked against the URLs the real
API pages give for the same posts."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from assets.ingest.urls import absolute, with_urls
from tests.conftest import shared_path
from tests.ingest.readback import demo_truth, ingest

BOORU = "fixtures/booru"
DANBOORU = f"{BOORU}/danbooru/grabber_danbooru_posts_2020.json"
DANBOORU2021 = f"{BOORU}/danbooru/danbooru2021_metadata_record_from_readme.jsonl"
E621 = f"{BOORU}/e621/grabber_e621_posts_2021.json"
E621_CSV = f"{BOORU}/e621/DERIVED_e621_db_export_layout_posts.csv"
DERPIBOORU = f"{BOORU}/derpibooru/grabber_derpibooru_search_2020.json"
GELBOORU = f"{BOORU}/gelbooru/booru-rs_gelbooru_posts_2023.json"
URLS = ["post_id", "file_url", "sample_url", "preview_url", "url_derived"]


def load(relative: str):
    return json.loads(shared_path(relative).read_text())


def write(tmp_path: Path, name: str, payload) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(payload))
    return path


def urls(posts: pl.DataFrame) -> dict[int, dict]:
    return {row["post_id"]: row for row in posts.select(URLS).iter_rows(named=True)}


def without(records: list[dict], *fields: str) -> list[dict]:
    records = copy.deepcopy(records)
    for record in records:
        for field in fields:
            record.pop(field, None)
    return records


# --- Danbooru --------------------------------------------------------------------------------


def test_danbooru_api_urls_are_kept_as_the_site_wrote_them(tmp_path):
    real = load(DANBOORU)
    _, posts, _, _ = ingest(shared_path(DANBOORU), tmp_path)
    read = urls(posts)
    assert len(read) == len(real) == 10
    for post in real:
        assert read[post["id"]] == {
            "post_id": post["id"],
            "file_url": post["file_url"],
            "sample_url": post["large_file_url"],
            "preview_url": post["preview_file_url"],
            "url_derived": False,
        }
    assert read[4018204]["file_url"] == (
        "https://danbooru.donmai.us/data/4f39497ef8fcd059984c3b1fe86cf542.png"
    )


def test_danbooru_url_is_derived_from_the_md5_where_the_page_has_none(tmp_path):
    """The 2020 page serves originals from /data/<md5>.<ext> and previews from the sharded
    cdn.donmai.us/<kind>/<md5[0:2]>/<md5[2:4]>/ folders; the derived URL is today's
    cdn.donmai.us/original/ path of the same file name in the same folders."""
    real = load(DANBOORU)
    path = write(tmp_path, "page.json", without(real, "file_url", "large_file_url"))
    _, posts, _, _ = ingest(path, tmp_path)
    read = urls(posts)
    for post in real:
        derived = read[post["id"]]
        name = post["file_url"].rsplit("/", 1)[1]
        folders = post["preview_file_url"].removeprefix("https://cdn.donmai.us/preview/")
        assert derived["url_derived"] is True and derived["sample_url"] is None
        assert derived["file_url"] == f"https://cdn.donmai.us/original/{folders[:6]}{name}"
        assert derived["preview_url"] == post["preview_file_url"]
    assert read[4018204]["file_url"] == (
        "https://cdn.donmai.us/original/4f/39/4f39497ef8fcd059984c3b1fe86cf542.png"
    )


def test_danbooru2021_dump_gets_a_derived_url(tmp_path):
    _, posts, _, _ = ingest(shared_path(DANBOORU2021), tmp_path)
    assert posts.select(URLS).row(0) == (
        263162,
        "https://cdn.donmai.us/original/9a/0f/9a0f9e0f08907d12b7d08e46047ae4d8.jpg",
        None,
        None,
        True,
    )


def test_a_withheld_danbooru_file_has_a_derived_url_only_where_its_md5_is_known(tmp_path):
    real = load(DANBOORU)
    hidden = without(real[:2], "file_url", "large_file_url", "preview_file_url")
    del hidden[1]["md5"]  # as Danbooru answers for a banned post
    _, posts, _, _ = ingest(write(tmp_path, "page.json", hidden), tmp_path)
    read = urls(posts)
    assert read[4018204]["url_derived"] is True
    assert read[4018203] == dict.fromkeys(URLS) | {"post_id": 4018203}


# --- e621 ------------------------------------------------------------------------------------


def test_e621_api_urls_are_kept_and_the_export_derives_the_same_ones(tmp_path):
    real = {post["id"]: post for post in load(E621)["posts"]}
    _, api, _, _ = ingest(shared_path(E621), tmp_path / "api")
    _, export, _, _ = ingest(shared_path(E621_CSV), tmp_path / "csv")
    from_api, from_export = urls(api), urls(export)
    assert len(real) == len(from_api) == len(from_export) == 75
    for post_id, post in real.items():
        assert from_api[post_id] == {
            "post_id": post_id,
            "file_url": post["file"]["url"],
            "sample_url": post["sample"]["url"],
            "preview_url": post["preview"]["url"],
            "url_derived": False,
        }
        # The export has no URLs: each one derived from the md5 is the API's own.
        assert from_export[post_id]["file_url"] == post["file"]["url"]
        assert from_export[post_id]["url_derived"] is True
        assert from_export[post_id]["sample_url"] is None
    assert from_export[2716681]["file_url"] == (
        "https://static1.e621.net/data/3c/62/3c625c84b27eaa286ebc12d24bc9327b.png"
    )


def test_e621_post_whose_file_the_api_withholds_gets_the_derived_url(tmp_path):
    page = load(E621)
    post = page["posts"][0]
    url = post["file"]["url"]
    post["file"]["url"] = None
    post["flags"]["deleted"] = True
    _, posts, _, _ = ingest(write(tmp_path, "page.json", {"posts": [post]}), tmp_path)
    assert posts.select("file_url", "url_derived").row(0) == (url, True)


# --- Gelbooru --------------------------------------------------------------------------------


def test_gelbooru_urls_are_kept_and_an_empty_sample_is_none(tmp_path):
    real = load(GELBOORU)["post"]
    _, posts, _, _ = ingest(shared_path(GELBOORU), tmp_path)
    read = urls(posts)
    for post in real:
        assert read[post["id"]] == {
            "post_id": post["id"],
            "file_url": post["file_url"],
            "sample_url": post["sample_url"] or None,
            "preview_url": post["preview_url"],
            "url_derived": False,
        }
    assert sum(read[p]["sample_url"] is None for p in read) == 4  # the posts with sample 0


@pytest.mark.parametrize(
    "dropped", [("file_url",), ("file_url", "directory")], ids=["fields", "md5"]
)
def test_gelbooru_url_derived_from_directory_and_image_or_the_md5(tmp_path, dropped):
    """Without `directory`, the md5's folders; the extension comes from `image` (a post with
    neither `image` nor `file_url` has none, and so no URL: see the XML test)."""
    page = load(GELBOORU)
    real = {post["id"]: post["file_url"] for post in page["post"]}
    page["post"] = without(page["post"], *dropped)
    _, posts, _, _ = ingest(write(tmp_path, "page.json", page), tmp_path)
    read = urls(posts)
    assert {p: read[p]["file_url"] for p in read} == real  # 8315396 is a .jpeg
    assert all(read[p]["url_derived"] for p in read)


def test_legacy_gelbooru_xml_keeps_its_urls_or_derives_one(tmp_path):
    md5 = "9de2b8efd300f1aaf8ba84ce5d8205e1"
    common = (
        f'md5="{md5}" rating="s" score="3" created_at="Sat Jun 03 10:21:07 -0500 2017" '
        'change="1496503267" width="800" height="600" tags=" solo " status="active"'
    )
    given = f"https://simg3.gelbooru.com/images/9d/e2/{md5}.png"
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<posts count="2" offset="0">\n'
        f'<post id="1" {common} file_url="{given}" sample_url="{given}" '
        f'preview_url="//assets.gelbooru.com/thumbnails/9d/e2/thumbnail_{md5}.jpg"/>\n'
        f'<post id="2" {common} file_url="" sample_url="" preview_url=""/>\n</posts>'
    )
    path = tmp_path / "index.xml"
    path.write_text(text)
    _, posts, _, _ = ingest(path, tmp_path)
    read = urls(posts)
    assert read[1]["file_url"] == given and read[1]["url_derived"] is False
    thumbnail = f"https://assets.gelbooru.com/thumbnails/9d/e2/thumbnail_{md5}.jpg"
    assert read[1]["preview_url"] == thumbnail
    # No file_url and no extension to derive one from: nothing is made up.
    assert read[2]["file_url"] is None and read[2]["url_derived"] is None


# --- Philomena -------------------------------------------------------------------------------


def test_derpibooru_urls_come_from_the_representations(tmp_path):
    real = load(DERPIBOORU)["images"]
    _, posts, _, _ = ingest(shared_path(DERPIBOORU), tmp_path)
    read = urls(posts)
    for image in real:
        shown = image["representations"]
        assert read[image["id"]] == {
            "post_id": image["id"],
            "file_url": shown["full"],
            "sample_url": shown["large"],
            "preview_url": shown["thumb"],
            "url_derived": False,
        }
    assert read[2316400]["file_url"] == "https://derpicdn.net/img/view/2020/4/7/2316400.webm"


def test_derpibooru_view_url_or_a_derived_url_without_representations(tmp_path):
    page = load(DERPIBOORU)
    real = {image["id"]: image for image in page["images"]}
    page["images"] = without(page["images"], "representations")
    _, posts, _, _ = ingest(write(tmp_path, "view.json", page), tmp_path / "view")
    assert {p: r["file_url"] for p, r in urls(posts).items()} == {
        p: image["view_url"] for p, image in real.items()
    }
    page["images"] = without(page["images"], "view_url")
    _, posts, _, _ = ingest(write(tmp_path, "none.json", page), tmp_path / "none")
    read = urls(posts)
    assert {p: r["file_url"] for p, r in read.items()} == {
        p: image["representations"]["full"] for p, image in real.items()
    }
    assert all(r["url_derived"] for r in read.values())


def test_representations_that_are_not_an_object_are_quarantined(tmp_path):
    page = load(DERPIBOORU)
    page["images"][0]["representations"] = "https://derpicdn.net/img/view/x.png"
    _, posts, quarantine, _ = ingest(write(tmp_path, "p.json", page), tmp_path, threshold=1.0)
    assert posts.height == 4
    assert quarantine["reason"].to_list() == ["unreadable record: representations is not an object"]


# --- the expressions alone (no fixtures) -----------------------------------------------------


def test_relative_urls_are_made_absolute_and_junk_is_dropped():
    frame = pl.DataFrame(
        {"u": ["/data/a.jpg", "//cdn.example/b.png", "https://x/c.gif", "", "  ", "n/a", None]}
    )
    got = frame.select(absolute(pl.col("u"), "https://danbooru.donmai.us"))["u"].to_list()
    assert got == [
        "https://danbooru.donmai.us/data/a.jpg",
        "https://cdn.example/b.png",
        "https://x/c.gif",
        None,
        None,
        None,
        None,
    ]


def test_layouts_on_literal_posts():
    md5 = "0123456789abcdef0123456789abcdef"
    posts = pl.DataFrame(
        {
            "post_id": [7, 8],
            "md5": [md5, None],
            "file_ext": ["png", "jpg"],
            "created_at": [datetime(2021, 1, 2, 23, 59, tzinfo=UTC)] * 2,
        }
    )
    expected = {
        "danbooru": f"https://cdn.donmai.us/original/01/23/{md5}.png",
        "e621": f"https://static1.e621.net/data/01/23/{md5}.png",
        "gelbooru": f"https://img3.gelbooru.com/images/01/23/{md5}.png",
        "derpibooru": "https://derpicdn.net/img/view/2021/1/2/7.png",
    }
    for site, url in expected.items():
        got = with_urls(posts, site)
        assert got["file_url"][0] == url and got["url_derived"][0] is True, site
    # Without an md5 only Philomena's layout (by id and day) still locates the file.
    assert with_urls(posts, "e621")["file_url"][1] is None
    assert with_urls(posts, "e621")["url_derived"][1] is None
    assert with_urls(posts, "derpibooru")["file_url"][1].endswith("/2021/1/2/8.jpg")


# --- the demo's files ------------------------------------------------------------------------


def _demo_urls(truth: pl.DataFrame, kind: str) -> pl.DataFrame:
    md5, ext = pl.col("md5"), pl.col("file_ext")
    shard = pl.format("{}/{}/{}", md5.str.slice(0, 2), md5.str.slice(2, 2), md5)
    made = pl.col("created_at").dt.convert_time_zone("UTC")
    site = kind.split("_")[0]
    url = {
        "danbooru": pl.format("https://cdn.donmai.us/original/{}.{}", shard, ext),
        "e621": pl.format("https://static1.e621.net/data/{}.{}", shard, ext),
        "gelbooru": pl.format("https://img3.gelbooru.com/images/{}.{}", shard, ext),
        "derpibooru": pl.format(
            "https://derpicdn.net/img/view/{}/{}/{}/{}.{}",
            made.dt.year(),
            made.dt.month(),
            made.dt.day(),
            "post_id",
            ext,
        ),
    }[site]
    return truth.select("post_id", expected=url)


@pytest.mark.parametrize(
    "kind, pattern, derived",
    [
        ("danbooru_api", "danbooru/posts-*.json", False),
        ("danbooru_dump", "danbooru/*.jsonl", True),
        ("e621_api", "e621/posts-api-*.json", False),
        ("e621_csv", "e621/posts-*.csv.gz", True),
        ("derpibooru_api", "derpibooru/search-*.json", False),
        ("gelbooru_json", "gelbooru/posts-*.json", False),
        ("gelbooru_xml", "gelbooru/*.xml", False),
    ],
)
def test_demo_files_locate_every_post(demo_layout, tmp_path, kind, pattern, derived):
    """Every demo post has its canonical URL: given (the API withholds it only for banned
    Danbooru posts, which have no md5, and deleted e621 posts, which get it derived)."""
    files = sorted(demo_layout.inbox.glob(pattern))
    read = pl.concat(
        ingest(path, tmp_path / str(i), threshold=1.0)[1] for i, path in enumerate(files)
    )
    expected = _demo_urls(demo_truth(demo_layout, kind), kind)
    joined = read.join(expected, on="post_id")
    assert joined.height == read.height > 20
    located = joined.filter(pl.col("file_url").is_not_null())
    assert located.filter(pl.col("file_url") != pl.col("expected")).height == 0
    assert read.filter(pl.col("file_url").is_null())["md5"].is_null().all()
    if derived:
        assert read["url_derived"].all()
    elif kind == "e621_api":
        assert read["is_deleted"].any()
        assert read["url_derived"].to_list() == read["is_deleted"].to_list()
    else:
        assert not read["url_derived"].any()
