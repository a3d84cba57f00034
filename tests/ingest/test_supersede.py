"""Superseded full exports: a newer e621 db_export (or Danbooru dump) retires the older ones of
its site; API pages keep merging newest-record-wins; retention removes what was superseded."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from assets.ingest.current import current_posts
from assets.ingest.formats import formats
from assets.ingest.paths import RawFile, posts_files, superseded_files, table_files
from assets.ingest.reader import ingest_file
from assets.ingest.supersede import (
    TABLES,
    Ingested,
    Stamp,
    export_set,
    read_stamp,
    retire,
    supersede,
)
from orchestration.atomic import write_parquet
from orchestration.storage import Layout
from scoretag.demo.writers import e621 as e621_writer
from tests.conftest import shared_path

T0 = datetime(2026, 11, 5, 12, tzinfo=UTC)  # when the first file is ingested
OLD, NEW = "posts-2026-11-01.csv.gz", "posts-2026-11-02.csv.gz"
PAGE = "posts-api-2026-11-03.json"


def _posts(ids, updated: datetime, score: int = 3) -> pl.DataFrame:
    """Posts as the demo's e621 writer takes them."""
    return pl.DataFrame(
        [
            {
                "post_id": i,
                "created_at": datetime(2025, 1, 1, tzinfo=UTC) + timedelta(hours=i),
                "updated_at": updated,
                "md5": f"{i:032x}",
                "source": "",
                "rating_raw": "s",
                "width": 800,
                "height": 600,
                "general_tags": ["solo"],
                "favorites": 1,
                "file_ext": "png",
                "parent_id": None,
                "file_size": 1000,
                "is_video": False,
                "is_deleted": False,
                "is_pending": False,
                "score": score,
                "up_votes": score,
                "down_votes": 0,
            }
            for i in ids
        ]
    )


def _layout(tmp_path: Path, **kwargs) -> Layout:
    return Layout(home=tmp_path / "home", **kwargs).ensure()


def _export(layout: Layout, name: str, posts: pl.DataFrame) -> RawFile:
    """An e621 db_export (the demo writer's, with its one broken row) dropped as `name`,
    with the tags table beside it."""
    scratch = layout.home / "scratch" / name
    scratch.mkdir(parents=True)
    written, tags = e621_writer.write_export(posts, scratch)
    inbox = layout.site_inbox("e621")
    inbox.mkdir(parents=True, exist_ok=True)
    shutil.move(written.path, inbox / name)
    shutil.copy(tags.path, inbox / tags.path.name)
    return RawFile("e621", name)


def _page(layout: Layout, name: str, posts: pl.DataFrame) -> RawFile:
    """An e621 /posts.json page (the demo writer's) dropped as `name`."""
    scratch = layout.home / "scratch" / name
    scratch.mkdir(parents=True)
    (page,) = e621_writer.write_api(posts, scratch)
    shutil.move(page.path, layout.site_inbox("e621") / name)
    return RawFile("e621", name)


def _ingest(layout: Layout, raw: RawFile, at: datetime):
    outs = [raw.output(layout, t) for t in TABLES]
    return ingest_file(raw.path(layout), *outs, site=raw.site, source_file=raw.key, ingested_at=at)


def _two_exports(layout: Layout, new_first: bool = False) -> tuple[RawFile, RawFile]:
    """OLD holds posts 1-200 (score 3, as of Nov 1); NEW holds 1-150 (score 5, as of Nov 2)."""
    old = _export(layout, OLD, _posts(range(1, 201), datetime(2026, 11, 1, 3, tzinfo=UTC)))
    new = _export(layout, NEW, _posts(range(1, 151), datetime(2026, 11, 2, 3, tzinfo=UTC), 5))
    order = [new, old] if new_first else [old, new]
    for n, raw in enumerate(order):
        _ingest(layout, raw, T0 + timedelta(hours=n))
    return old, new


def _exists(layout: Layout, raw: RawFile) -> dict[str, bool]:
    found = {t: raw.output(layout, t).is_file() for t in TABLES}
    return {**found, "inbox": raw.path(layout).is_file()}


def test_which_formats_are_full_exports():
    full = {f.name for f in formats() if f.full_export}
    assert full == {"e621_csv", "danbooru_dump"}
    assert {f.name for f in formats()} - full == {
        "danbooru_api",
        "e621_api",
        "philomena_api",
        "gelbooru_json",
        "gelbooru_xml",
    }


def test_the_posts_footer_carries_the_stamp(tmp_path: Path):
    layout = _layout(tmp_path)
    # Post 7 twice: the file is deduplicated (rewritten by DuckDB) and renumbered (its broken
    # row): the stamp survives both rewrites.
    posts = pl.concat(
        [
            _posts(range(1, 201), datetime(2026, 11, 1, 3, tzinfo=UTC)),
            _posts([7], datetime(2026, 11, 1, 9, tzinfo=UTC)),
        ]
    )
    raw = _export(layout, OLD, posts)
    report = _ingest(layout, raw, T0)
    assert report.duplicates == 1 and report.quarantined == 1
    stamp = read_stamp(raw.output(layout, "posts"))
    assert stamp == report.stamp
    assert stamp.format == "e621_csv" and stamp.full_export
    assert stamp.snapshot_at == datetime(2026, 11, 1, 9, tzinfo=UTC)
    assert stamp.ingested_at == T0
    frame = pl.read_parquet(raw.output(layout, "posts"))
    newest = frame.select(pl.coalesce("updated_at", "created_at").max()).item()
    assert stamp.snapshot_at == newest  # what cohorts.snapshots reads from the rows
    page = _page(layout, PAGE, _posts([1, 2], datetime(2026, 11, 3, tzinfo=UTC)))
    _ingest(layout, page, T0)
    page_stamp = read_stamp(page.output(layout, "posts"))
    assert page_stamp.format == "e621_api" and not page_stamp.full_export


@pytest.mark.parametrize("new_first", [False, True], ids=["old-then-new", "new-then-old"])
def test_a_newer_export_supersedes_the_older(tmp_path: Path, new_first: bool):
    layout = _layout(tmp_path)
    old, new = _two_exports(layout, new_first)
    assert posts_files(layout) == [new.output(layout, "posts")]
    assert len(table_files(layout, "posts")) == 2  # still on disk, for lineage
    (entry,) = superseded_files(layout)
    assert entry.file.raw == old and entry.by.raw == new and entry.by_export == f"e621/{NEW}"
    # Since both were there: the newer one's ingestion, or the older one's if it came later.
    assert entry.since == T0 + timedelta(hours=1)
    current = current_posts(posts_files(layout))
    assert sorted(current["post_id"]) == list(range(1, 151))  # 151-200 were only in OLD
    assert set(current["score"]) == {5}


@pytest.mark.parametrize("page_first", [True, False], ids=["page-before", "page-after"])
def test_api_pages_keep_newest_record_wins(tmp_path: Path, page_first: bool):
    layout = _layout(tmp_path)
    page_posts = pl.concat(
        [
            _posts([10], datetime(2026, 11, 3, tzinfo=UTC), score=99),  # newer than NEW
            _posts([20], datetime(2026, 10, 15, tzinfo=UTC), score=77),  # older than both
            _posts([300], datetime(2026, 10, 1, tzinfo=UTC), score=42),  # in no export
        ]
    )
    page = _page(layout, PAGE, page_posts)
    if page_first:
        _ingest(layout, page, T0 - timedelta(days=1))
        old, new = _two_exports(layout)
    else:
        old, new = _two_exports(layout)
        _ingest(layout, page, T0 + timedelta(days=1))
    assert sorted(posts_files(layout)) == sorted(
        [new.output(layout, "posts"), page.output(layout, "posts")]
    )
    assert [s.file.raw for s in superseded_files(layout)] == [old]  # never the page
    current = current_posts(posts_files(layout)).sort("post_id")
    score = dict(zip(current["post_id"], current["score"], strict=True))
    assert score[10] == 99 and score[20] == 5 and score[300] == 42
    assert sorted(current["post_id"]) == [*range(1, 151), 300]


def test_retention_removes_exactly_the_superseded_file_after_the_set_days(tmp_path: Path):
    layout = _layout(tmp_path)
    page = _page(layout, PAGE, _posts([300], datetime(2026, 10, 1, tzinfo=UTC)))
    _ingest(layout, page, T0 - timedelta(days=30))
    old, new = _two_exports(layout)
    since = T0 + timedelta(hours=1)
    before = sorted(p for p in layout.home.rglob("*") if p.is_file())
    assert retire(layout, superseded_files(layout), 14, now=since + timedelta(days=13.9)) == []
    assert sorted(p for p in layout.home.rglob("*") if p.is_file()) == before
    superseded = superseded_files(layout)
    assert retire(layout, superseded, 14, now=since + timedelta(days=14), keep={old.key}) == []
    assert retire(layout, superseded, 14, now=since + timedelta(days=14), busy=lambda k: True) == []
    (removed,) = retire(layout, superseded, 14, now=since + timedelta(days=14))
    assert removed.file.raw == old
    gone = {old.path(layout), *(old.output(layout, t) for t in TABLES)}
    assert sorted(p for p in layout.home.rglob("*") if p.is_file()) == sorted(set(before) - gone)
    assert _exists(layout, old) == dict.fromkeys([*TABLES, "inbox"], False)
    assert _exists(layout, new) == dict.fromkeys([*TABLES, "inbox"], True)
    assert (layout.site_inbox("e621") / "tags-2026-11-01.csv.gz").is_file()
    assert superseded_files(layout) == []
    assert posts_files(layout) == sorted(
        [new.output(layout, "posts"), page.output(layout, "posts")]
    )


def test_zero_days_removes_at_once(tmp_path: Path):
    layout = _layout(tmp_path)
    old, _ = _two_exports(layout)
    (removed,) = retire(layout, superseded_files(layout), 0, now=T0 + timedelta(hours=1))
    assert removed.file.raw == old and not any(_exists(layout, old).values())


def test_a_raw_file_changed_since_it_was_read_stays_in_the_inbox(tmp_path: Path):
    layout = _layout(tmp_path)
    old, _ = _two_exports(layout)
    old.path(layout).write_bytes(old.path(layout).read_bytes() + b"\n")  # new content, not read
    retire(layout, superseded_files(layout), 0, now=T0 + timedelta(days=1))
    assert _exists(layout, old) == {**dict.fromkeys(TABLES, False), "inbox": True}


def _file(site: str, name: str, snapshot: datetime | None, ingested: datetime, full=True):
    raw = RawFile(site, name)
    stamp = Stamp("f", full, snapshot, ingested)
    return Ingested(raw, Path(f"/posts/{site}/{name}.parquet"), stamp)


def test_the_shards_of_one_dump_supersede_together():
    day = datetime(2021, 12, 1, tzinfo=UTC)
    shards_2021 = [
        _file("danbooru", f"posts00000000000{n}.json", day + timedelta(minutes=n), T0)
        for n in range(3)
    ]
    assert {export_set(f.raw.name) for f in shards_2021} == {"posts*.json"}
    assert supersede(shards_2021) == []  # one dump: no shard supersedes another
    newer = [
        _file("danbooru", f"danbooru2022-posts00000000000{n}.jsonl", day.replace(year=2022), T0)
        for n in range(2)
    ]
    page = _file("danbooru", "page1.json", day.replace(year=2020), T0, full=False)
    other_site = _file("e621", OLD, day.replace(year=2020), T0)
    found = supersede([*shards_2021, *newer, page, other_site])
    assert [s.file.raw.name for s in found] == [f.raw.name for f in shards_2021]
    assert {s.by_export for s in found} == {"danbooru/danbooru2022-posts*.jsonl"}


def test_ties_and_empty_exports():
    day = datetime(2026, 11, 1, tzinfo=UTC)
    first = _file("e621", "a.csv", day, T0)
    copy = _file("e621", "b.csv", day, T0 + timedelta(hours=1))  # the same snapshot, later
    empty = _file("e621", "c.csv", None, T0 + timedelta(hours=2))  # holds no post
    found = supersede([first, copy, empty])
    assert [(s.file.raw.name, s.by.raw.name) for s in found] == [
        ("a.csv", "b.csv"),
        ("c.csv", "b.csv"),
    ]
    assert found[1].since == T0 + timedelta(hours=2)


def test_a_posts_table_without_a_stamp_counts_as_partial(tmp_path: Path):
    """Tables written before stamps existed are never superseded (re-ingest them to stamp)."""
    layout = _layout(tmp_path)
    old, new = _two_exports(layout)
    legacy = RawFile("e621", "posts-2026-10-01.csv.gz")
    write_parquet(pl.read_parquet(old.output(layout, "posts")), legacy.output(layout, "posts"))
    assert read_stamp(legacy.output(layout, "posts")) is None
    assert legacy.output(layout, "posts") in posts_files(layout)
    assert [s.file.raw for s in superseded_files(layout)] == [old]


def test_under_an_object_root(tmp_path: Path, memory_root: str):
    from orchestration import objectstore

    local = _layout(tmp_path / "local")
    old, new = _two_exports(local)
    layout = _layout(tmp_path, object_root=memory_root)
    for raw in (old, new):
        raw.path(layout).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(raw.path(local), raw.path(layout))
        for table in TABLES:
            objectstore.upload(raw.output(local, table), raw.output(layout, table))
    assert objectstore.is_remote(new.output(layout, "posts"))
    assert posts_files(layout) == [new.output(layout, "posts")]
    (removed,) = retire(layout, superseded_files(layout), 14, now=T0 + timedelta(days=15))
    assert removed.file.raw == old
    assert _exists(layout, old) == dict.fromkeys([*TABLES, "inbox"], False)
    assert _exists(layout, new) == dict.fromkeys([*TABLES, "inbox"], True)


def test_real_e621_export_rows(tmp_path: Path):
    """The 75 real e621 posts in the db_export layout: a full export, stamped with its newest
    update; the same posts' API page is partial and stays."""
    export = shared_path("fixtures/booru/e621/DERIVED_e621_db_export_layout_posts.csv")
    page = shared_path("fixtures/booru/e621/grabber_e621_posts_2021.json")
    layout = _layout(tmp_path)
    inbox = layout.site_inbox("e621")
    shutil.copy(export, inbox / "posts-2021-04-28.csv")
    shutil.copy(page, inbox / "posts-api-2021-04-28.json")
    raw, api = RawFile("e621", "posts-2021-04-28.csv"), RawFile("e621", "posts-api-2021-04-28.json")
    report = _ingest(layout, raw, T0)
    _ingest(layout, api, T0)
    assert report.posts == 75 and report.stamp.full_export
    rows = pl.read_csv(export, columns=["updated_at", "created_at"], infer_schema=False)
    newest = max(rows["updated_at"].drop_nulls().max(), rows["created_at"].max())
    assert report.stamp.snapshot_at.strftime("%Y-%m-%d %H:%M:%S") == newest[:19]
    assert not read_stamp(api.output(layout, "posts")).full_export
    later = RawFile("e621", "posts-2021-04-29.csv")
    shutil.copy(export, later.path(layout))
    _ingest(layout, later, T0 + timedelta(days=1))  # the same snapshot, ingested later
    assert [s.file.raw for s in superseded_files(layout)] == [raw]
    assert sorted(posts_files(layout)) == sorted(
        [later.output(layout, "posts"), api.output(layout, "posts")]
    )
