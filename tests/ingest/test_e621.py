"""e621's adapter: `/posts.json` pages and the db_export CSV, on the real fixtures, the demo
files and small literal exports."""

from __future__ import annotations

import csv
import gzip
import io
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from assets.ingest import e621
from assets.ingest.formats import UnknownFormat, detect, head
from assets.ingest.reader import FileReport, ingest_file
from orchestration.storage import Layout
from scoretag.demo.writers.e621 import CSV_COLUMNS
from tests.conftest import shared_path
from tests.ingest.readback import demo_truth

API_FIXTURE = "fixtures/booru/e621/grabber_e621_posts_2021.json"
CSV_FIXTURE = "fixtures/booru/e621/DERIVED_e621_db_export_layout_posts.csv"
CATEGORY_LISTS = ("artist_tags", "character_tags", "copyright_tags", "species_tags", "meta_tags")
# The 2021 db_export header (the fixture's), which tests reorder and extend.
HEADER = [c for c in CSV_COLUMNS if c != "bg_color"]


def ingest(
    path: Path, out: Path, threshold: float = 1.0
) -> tuple[FileReport, pl.DataFrame, pl.DataFrame]:
    """Posts (in file order) and quarantined records of one file, through `ingest_file`."""
    out.mkdir(parents=True, exist_ok=True)
    files = [out / f"{name}.parquet" for name in ("posts", "quarantine", "skipped")]
    report = ingest_file(path, *files, site="e621", threshold=threshold)
    return report, pl.read_parquet(files[0]).sort("record"), pl.read_parquet(files[1])


def row(post_id: object, **values: str) -> dict[str, str]:
    """One export row with plausible values; `values` override them by header name."""
    base = dict.fromkeys(HEADER, "") | {
        "id": str(post_id),
        "created_at": "2024-01-02 03:04:05.678",
        "md5": f"{post_id!s:0>32}",
        "rating": "q",
        "image_width": "640",
        "image_height": "480",
        "tag_string": "fox solo the_artist",
        "fav_count": "7",
        "file_ext": "png",
        "file_size": "12345",
        "updated_at": "2024-01-03 00:00:00",
        "is_deleted": "f",
        "is_pending": "f",
        "is_flagged": "f",
        "score": "4",
        "up_score": "6",
        "down_score": "-2",
    }
    return base | values


def write_export(path: Path, rows: list[dict | str], header=HEADER) -> Path:
    """An export with `rows` in `header` order; a `str` row is written as it is (broken)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for item in rows:
        if isinstance(item, str):
            buffer.write(item + "\n")
        else:
            writer.writerow([item.get(name, "") for name in header])
    data = buffer.getvalue().encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def write_tags(path: Path, categories: dict[str, int]) -> Path:
    lines = ["id,name,category,post_count"]
    lines += [f"{i},{name},{category},1" for i, (name, category) in enumerate(categories.items())]
    path.write_text("\n".join(lines) + "\n")
    return path


# --- formats ---------------------------------------------------------------------------------


def test_each_format_claims_its_files_and_the_tags_table_is_not_a_posts_file(tmp_path: Path):
    assert detect(shared_path(API_FIXTURE)).name == "e621_api"
    assert detect(shared_path(CSV_FIXTURE)).name == "e621_csv"
    tags = write_tags(tmp_path / "tags-2024-01-03.csv", {"fox": 5})
    assert not e621.sniff_export(head(tags))
    with pytest.raises(UnknownFormat):
        detect(tags, site="e621")


# --- the real fixtures -----------------------------------------------------------------------


def test_api_fixture(tmp_path: Path):
    report, posts, quarantine = ingest(shared_path(API_FIXTURE), tmp_path)
    assert (report.format, report.posts, quarantine.height) == ("e621_api", 75, 0)
    first = posts.row(0, named=True)
    assert first["post_id"] == 2716681 and first["md5"] == "3c625c84b27eaa286ebc12d24bc9327b"
    assert (first["score"], first["up_votes"], first["down_votes"], first["favorites"]) == (
        1,
        1,
        0,
        1,
    )
    assert (first["width"], first["height"], first["file_ext"], first["file_size"]) == (
        2127,
        2700,
        "png",
        3463507,
    )
    assert first["created_at"] == datetime(2021, 4, 28, 17, 20, 9, 469000, tzinfo=UTC)
    assert (first["rating"], first["rating_raw"]) == ("g", "s")
    assert first["species_tags"] == ["dragon", "hybrid"] and first["artist_tags"] == ["zenfry"]
    assert first["character_tags"] == ["daz_(zenfry)"] and first["copyright_tags"] == []
    assert len(first["tags"]) == 24 and {"abs", "dragon", "zenfry", "2020"} <= set(first["tags"])
    assert first["source"].split("\n")[1] == "https://www.furaffinity.net/view/38293642/"
    by_id = {p["post_id"]: p for p in posts.to_dicts()}
    assert (by_id[2716621]["score"], by_id[2716621]["down_votes"]) == (-1, 1)
    assert by_id[2716591]["parent_id"] == 2697693 and by_id[2716663]["is_pending"] is True


def test_api_single_post_empty_page_and_an_unreadable_post(tmp_path: Path):
    post = json.loads(shared_path(API_FIXTURE).read_text())["posts"][0]
    (tmp_path / "one.json").write_text(json.dumps({"post": post}))
    _, posts, _ = ingest(tmp_path / "one.json", tmp_path / "one")
    assert posts["post_id"].to_list() == [2716681]
    (tmp_path / "empty.json").write_text('{"posts": []}')
    assert detect(tmp_path / "empty.json").name == "e621_api"
    assert ingest(tmp_path / "empty.json", tmp_path / "empty")[1].height == 0
    (tmp_path / "page.json").write_text(json.dumps({"posts": [post, {**post, "file": "x"}]}))
    _, posts, quarantine = ingest(tmp_path / "page.json", tmp_path / "page")
    assert posts.height == 1
    assert quarantine.row(0, named=True)["reason"] == "unreadable record: file is not an object"


def test_export_fixture(tmp_path: Path):
    report, posts, quarantine = ingest(shared_path(CSV_FIXTURE), tmp_path)
    assert (report.format, report.posts, quarantine.height) == ("e621_csv", 75, 0)
    assert posts["record"].to_list() == list(range(1, 76))
    first = posts.row(0, named=True)
    assert first["post_id"] == 2716276 and first["md5"] == "4c077db693715f700b4d33b5f1d5f54d"
    assert first["source"] == (
        "https://twitter.com/Spareribs_777/status/1362703479429545984\n"
        "https://pbs.twimg.com/media/EukenTyVEAIL0mI?format=jpg&name=orig"
    )
    assert first["created_at"] == datetime(2021, 4, 28, 6, 21, 42, 324000, tzinfo=UTC)
    assert first["updated_at"] == datetime(2021, 4, 28, 17, 24, 56, 624000, tzinfo=UTC)
    assert (first["is_deleted"], first["is_pending"], first["rating"]) == (False, False, "g")
    assert (first["favorites"], first["file_size"], first["parent_id"]) == (14, 449682, None)
    assert len(first["tags"]) == 32 and "pokémon_(species)" in first["tags"]
    pending = posts.filter(pl.col("post_id") == 2716313).row(0, named=True)
    assert (pending["score"], pending["up_votes"], pending["down_votes"]) == (1, 3, 2)
    assert pending["is_pending"] is True
    # No tags table beside the fixture: the export alone has no categories.
    assert posts.select(pl.col(CATEGORY_LISTS).is_null().all()).row(0) == (True,) * 5


def test_api_and_export_fixtures_hold_the_same_posts(tmp_path: Path):
    _, api, _ = ingest(shared_path(API_FIXTURE), tmp_path / "api")
    _, export, _ = ingest(shared_path(CSV_FIXTURE), tmp_path / "csv")
    columns = [
        "post_id",
        "md5",
        "created_at",
        "rating",
        "score",
        "up_votes",
        "down_votes",
        "favorites",
        "width",
        "height",
        "file_size",
        "source",
        "parent_id",
        "is_pending",
    ]
    tag_sets = pl.col("tags").list.sort()
    assert (
        api.sort("post_id")
        .select(*columns, tag_sets)
        .equals(export.sort("post_id").select(*columns, tag_sets))
    )


# --- the demo files --------------------------------------------------------------------------


COMPARED = [
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
    "file_size",
    "is_deleted",
    "is_pending",
    "created_at",
    "parent_id",
]


def _truth(layout: Layout, kind: str) -> pl.DataFrame:
    every_tag = pl.concat_list("general_tags", *CATEGORY_LISTS).list.sort()
    return (
        demo_truth(layout, kind)
        .select(
            *COMPARED,
            *(pl.col(c).list.sort() for c in CATEGORY_LISTS),
            tags=every_tag,
            source=pl.col("source").replace("", None),
        )
        .sort("post_id")
    )


def _read_back(posts: pl.DataFrame) -> pl.DataFrame:
    return posts.select(
        *COMPARED,
        *(pl.col(c).list.sort() for c in CATEGORY_LISTS),
        pl.col("tags").list.sort(),
        "source",
    ).sort("post_id")


@pytest.mark.parametrize(
    "kind, name",
    [("e621_api", "posts-api-2026-11-01-p001.json"), ("e621_csv", "posts-2026-11-01.csv.gz")],
)
def test_demo_posts_are_read_back(demo_layout, tmp_path: Path, kind: str, name: str):
    layout = demo_layout
    report, posts, _ = ingest(layout.inbox / "e621" / name, tmp_path, threshold=0.01)
    assert report.format == kind
    truth = _truth(layout, kind)
    got = _read_back(posts)
    assert got.height == truth.height > 100
    assert got.equals(truth.select(got.columns))
    assert (got["down_votes"] >= 0).all() and (got["down_votes"] > 0).any()


def test_demo_export_quarantines_its_short_row(demo_layout, tmp_path: Path):
    layout = demo_layout
    path = layout.inbox / "e621" / "posts-2026-11-01.csv.gz"
    report, posts, quarantine = ingest(path, tmp_path, threshold=0.01)
    skipped = pl.read_parquet(layout.demo / "skipped.parquet").filter(pl.col("site") == "e621")
    expected = skipped.row(0, named=True)
    assert report.quarantined == 1 and quarantine["record"].to_list() == [expected["record"]]
    assert quarantine["reason"][0].startswith("wrong number of fields (12, expected 30)")
    # Numbering goes on past the short row: the row after it keeps its own number.
    assert expected["record"] not in posts["record"] and expected["record"] + 1 in posts["record"]


def test_demo_export_without_its_tags_table_has_no_categories(demo_layout, tmp_path: Path):
    layout = demo_layout
    alone = tmp_path / "alone" / "posts-2026-11-01.csv.gz"
    alone.parent.mkdir()
    shutil.copy(layout.inbox / "e621" / alone.name, alone)
    _, posts, _ = ingest(alone, tmp_path / "out")
    assert posts.height > 100
    assert posts.select(pl.col(CATEGORY_LISTS).is_null().all()).row(0) == (True,) * 5


# --- literal exports -------------------------------------------------------------------------


def test_header_order_and_unknown_columns_do_not_matter(tmp_path: Path):
    rows = [row(1, source="https://a.example/1\nhttps://b.example/1"), row(2, rating="e")]
    shuffled = [*HEADER[::-1][:10], "last_noted_at", *HEADER[::-1][10:], "bg_color"]
    rows_extra = [r | {"last_noted_at": "2024-01-01 00:00:00", "bg_color": "ffffff"} for r in rows]
    _, plain, _ = ingest(write_export(tmp_path / "a" / "posts-1.csv", rows), tmp_path / "oa")
    _, moved, _ = ingest(
        write_export(tmp_path / "b" / "posts-1.csv", rows_extra, shuffled), tmp_path / "ob"
    )
    assert plain.drop("ingested_at").equals(moved.drop("ingested_at"))
    assert plain["source"][0] == "https://a.example/1\nhttps://b.example/1"
    assert plain["rating"].to_list() == ["q", "e"]


def test_csv_and_gz_give_the_same_rows(tmp_path: Path):
    rows = [row(i, source=f"https://a.example/{i}\nhttps://b.example/{i}") for i in range(1, 6)]
    _, plain, _ = ingest(write_export(tmp_path / "posts-1.csv", rows), tmp_path / "oa")
    _, packed, _ = ingest(write_export(tmp_path / "posts-1.csv.gz", rows), tmp_path / "ob")
    assert plain.height == 5
    assert plain.drop("ingested_at", "source_file").equals(
        packed.drop("ingested_at", "source_file")
    )


def test_bad_values_are_quarantined_with_a_reason_and_the_rest_loads(tmp_path: Path):
    rows = [row(1), row("abc"), row(3, rating="x"), row(4)]
    report, posts, quarantine = ingest(write_export(tmp_path / "posts-1.csv", rows), tmp_path)
    assert posts["post_id"].to_list() == [1, 4] and posts["record"].to_list() == [1, 4]
    reasons = dict(quarantine.select("record", "reason").iter_rows())
    assert reasons == {2: "post_id is not an integer: 'abc'", 3: "unknown rating 'x'"}
    assert report.quarantined == 2


def test_broken_rows_are_rejected_and_the_others_keep_their_row_numbers(tmp_path: Path):
    two_lines = "https://a.example/x\nhttps://b.example/x"
    rows = [
        row(1, source=two_lines),
        row(2),
        "3,100,2024-01-01",
        row(4, source=two_lines),
        ",".join(["5"] * (len(HEADER) + 1)),
        row(6),
    ]
    _, posts, quarantine = ingest(write_export(tmp_path / "posts-1.csv", rows), tmp_path)
    assert posts.select("record", "post_id").rows() == [(1, 1), (2, 2), (4, 4), (6, 6)]
    assert quarantine["record"].to_list() == [3, 5]
    assert quarantine["reason"][0].startswith(f"wrong number of fields (3, expected {len(HEADER)})")
    assert quarantine["reason"][1].startswith(f"wrong number of fields ({len(HEADER) + 1}, ")
    assert quarantine["raw"][0] == "3,100,2024-01-01"


def test_a_row_that_is_not_utf8_is_rejected_in_its_place(tmp_path: Path):
    path = write_export(
        tmp_path / "posts-1.csv",
        [row(1), row(2, tag_string="BAD_TAG"), row(3, description="BAD_TEXT"), row(4)],
    )
    path.write_bytes(
        path.read_bytes().replace(b"BAD_TAG", b"bad\xfftag").replace(b"BAD_TEXT", b"bad\xfetext")
    )
    _, posts, quarantine = ingest(path, tmp_path / "out")
    # Columns scoretag does not read (description) are not checked: that row loads.
    assert posts.select("record", "post_id").rows() == [(1, 1), (3, 3), (4, 4)]
    assert quarantine["record"].to_list() == [2]
    assert quarantine["reason"][0].startswith("unreadable CSV row: Invalid unicode")


def test_newest_tags_table_fills_the_categories(tmp_path: Path):
    write_export(tmp_path / "posts-2024-01-03.csv", [row(1, tag_string="fox solo the_artist")])
    write_tags(tmp_path / "tags-2024-01-01.csv", {"fox": 1, "the_artist": 5})
    write_tags(tmp_path / "tags-2024-01-03.csv", {"fox": 5, "the_artist": 1, "solo": 0})
    _, posts, _ = ingest(tmp_path / "posts-2024-01-03.csv", tmp_path / "out")
    post = posts.row(0, named=True)
    assert (post["species_tags"], post["artist_tags"], post["meta_tags"]) == (
        ["fox"],
        ["the_artist"],
        [],
    )
    assert post["tags"] == ["fox", "solo", "the_artist"]
