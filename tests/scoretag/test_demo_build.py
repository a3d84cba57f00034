"""The demo dataset: every file kind in its site's real format, deterministic, realistic."""

from __future__ import annotations

import csv
import gzip
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import polars as pl
import pytest

from orchestration.settings import DemoSettings
from orchestration.storage import Layout
from scoretag.demo.build import MANIFEST, DemoBuild, build_demo
from tests.conftest import shared_path


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Layout, DemoBuild]:
    layout = Layout(home=tmp_path_factory.mktemp("demo"))
    return layout, build_demo(layout, DemoSettings())


def _files(build: DemoBuild, kind: str) -> list[dict]:
    return [f for f in build.manifest["files"] if f["kind"] == kind]


def _load(layout: Layout, entry: dict):
    path = layout.home / entry["path"]
    if entry["format"] == "json":
        return json.loads(path.read_text())
    if entry["format"] == "jsonl":
        return path.read_text().splitlines()
    if entry["format"] == "csv.gz":
        return list(csv.DictReader(io.StringIO(gzip.decompress(path.read_bytes()).decode())))
    return ET.parse(path).getroot()


def test_same_seed_gives_the_same_bytes(demo, tmp_path: Path):
    layout, first = demo
    again = build_demo(Layout(home=tmp_path), DemoSettings(), workers=1)
    assert again.manifest == first.manifest
    for name in ("posts.parquet", "images.parquet", "skipped.parquet", MANIFEST):
        assert (tmp_path / "demo" / name).read_bytes() == (layout.demo / name).read_bytes()


def test_another_seed_gives_other_data_and_removes_stale_files(tmp_path: Path):
    layout = Layout(home=tmp_path)
    one = build_demo(layout, DemoSettings(seed=1, images=60, posts=200))
    two = build_demo(layout, DemoSettings(seed=2, images=60, posts=200))
    paths_one = {f["path"] for f in one.manifest["files"]}
    paths_two = {f["path"] for f in two.manifest["files"]}
    assert paths_one != paths_two
    on_disk = {
        str(p.relative_to(tmp_path))
        for p in tmp_path.rglob("*")
        if p.is_file() and p.parent.name != "demo" and p.parts[len(tmp_path.parts)] != "evaluations"
    }
    assert on_disk == paths_two  # nothing left from seed 1, no temporary files
    assert not two.posts.equals(one.posts)
    # The evaluation sets hold seed 2's pictures only: each listed in its prompts.jsonl,
    # and nothing else but the degraded set's broken file.
    for name in ("demo-clean", "demo-degraded"):
        folder = tmp_path / "evaluations" / name
        listed = {json.loads(line)["file"] for line in (folder / "prompts.jsonl").open()}
        found = {p.relative_to(folder).as_posix() for p in folder.rglob("*.png")}
        assert listed and found - listed == ({"unfinished.png"} if "degraded" in name else set())


def test_sizes_match_the_settings(demo):
    _, build = demo
    assert build.posts.height == 2000 and build.images.height == 600
    assert set(build.posts["site"]) == {"danbooru", "e621", "derpibooru", "gelbooru"}
    assert build.manifest["posts"] == 2000


def test_every_file_kind_is_written(demo):
    _, build = demo
    kinds = {(f["site"], f["kind"], f["format"]) for f in build.manifest["files"]}
    assert kinds >= {
        ("danbooru", "danbooru_api", "json"),
        ("danbooru", "danbooru_dump", "jsonl"),
        ("e621", "e621_api", "json"),
        ("e621", "e621_csv", "csv.gz"),
        ("e621", "e621_tags", "csv.gz"),
        ("derpibooru", "derpibooru_api", "json"),
        ("gelbooru", "gelbooru_json", "json"),
        ("gelbooru", "gelbooru_xml", "xml"),
        ("", "image", "jpg"),
        ("", "image", "png"),
        ("", "image", "webp"),
    }


def test_danbooru_api_pages_and_single_object(demo):
    layout, build = demo
    payloads = [_load(layout, f) for f in _files(build, "danbooru_api")]
    pages = [p for p in payloads if isinstance(p, list)]
    singles = [p for p in payloads if isinstance(p, dict)]
    assert pages and len(singles) == 1 and "id" in singles[0]
    records = [r for page in pages for r in page] + singles
    assert len(records) == 250
    assert all(r["down_score"] <= 0 <= r["up_score"] for r in records)
    assert {r["rating"] for r in records} == {"g", "s", "q", "e"}  # today's four ratings
    banned = [r for r in records if r["is_banned"]]
    assert all("md5" not in r for r in banned)


def test_danbooru_dump_is_danbooru2021_style(demo):
    layout, build = demo
    (entry,) = _files(build, "danbooru_dump")
    lines = _load(layout, entry)
    good = []
    for line in lines:
        try:
            good.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    record = next(r for r in good if r["id"].isdigit() and r["favs"])
    assert isinstance(record["score"], str) and record["down_score"].startswith(("-", "0"))
    assert {"id", "name", "category"} <= set(record["tags"][0])
    assert "1970-01-01 00:00:00 UTC" in (record["last_commented_at"], record["last_noted_at"])
    assert {r["rating"] for r in good} == {"s", "q", "e"}  # the pre-2022 scheme
    truth = build.posts.filter(pl.col("source_kind") == "danbooru_dump")
    favorites = dict(truth.select("post_id", "favorites").iter_rows())
    assert len(record["favs"]) == favorites[int(record["id"])]
    assert len(lines) == entry["records"] + entry["skipped"] == 452


def test_e621_api_and_db_export(demo):
    layout, build = demo
    (api,) = [_load(layout, f) for f in _files(build, "e621_api")]
    assert all(p["score"]["down"] <= 0 <= p["score"]["up"] for p in api["posts"])
    assert {"general", "species", "artist", "meta"} <= set(api["posts"][0]["tags"])
    (export,) = _files(build, "e621_csv")
    rows = _load(layout, export)
    assert "bg_color" in rows[0]  # a newer column: readers go by header name
    whole = [r for r in rows if None not in r.values()]
    assert len(rows) - len(whole) == 1  # the row cut short
    assert {r["is_deleted"] for r in whole} == {"t", "f"}
    assert any("\n" in r["source"] for r in whole)  # multi-line quoted sources
    (tags,) = [_load(layout, f) for f in _files(build, "e621_tags")]
    assert {"id", "name", "category", "post_count"} == set(tags[0])


def test_derpibooru_search_pages_stubs_and_single_image(demo):
    layout, build = demo
    payloads = [_load(layout, f) for f in _files(build, "derpibooru_api")]
    images = [i for p in payloads if "images" in p for i in p["images"]]
    singles = [p["image"] for p in payloads if "image" in p]
    stubs = [i for i in images if "tags" not in i]
    assert len(singles) == 1 and len(stubs) == 10
    assert all(
        set(s)
        <= {
            "id",
            "created_at",
            "updated_at",
            "first_seen_at",
            "duplicate_of",
            "deletion_reason",
            "hidden_from_users",
        }
        for s in stubs
    )
    posts = [i for i in images if "tags" in i] + singles
    assert len(posts) == 350
    assert all(p["downvotes"] >= 0 and "md5" not in p for p in posts)
    rating_tags = {t for p in posts for t in p["tags"]} & {
        "safe",
        "suggestive",
        "questionable",
        "explicit",
    }
    assert rating_tags == {"safe", "suggestive", "questionable", "explicit"}


def test_gelbooru_json_and_legacy_xml(demo):
    layout, build = demo
    pages = [_load(layout, f) for f in _files(build, "gelbooru_json")]
    posts = [p for page in pages for p in page["post"]]
    assert all("@attributes" in page for page in pages) and len(posts) == 250
    assert {p["rating"] for p in posts} == {"general", "sensitive", "questionable", "explicit"}
    assert not any("up_score" in p or "fav_count" in p for p in posts)
    (root,) = [_load(layout, f) for f in _files(build, "gelbooru_xml")]
    assert root.tag == "posts" and len(root) == 100
    assert {p.get("rating") for p in root} == {"s", "q", "e"}


def _broken(line: str) -> bool:
    try:
        return not json.loads(line)["id"].isdigit()
    except json.JSONDecodeError:
        return True


def test_bad_records_are_listed_in_the_ground_truth(demo):
    layout, _ = demo
    skipped = pl.read_parquet(layout.demo / "skipped.parquet")
    assert set(skipped["site"]) == {"danbooru", "e621", "derpibooru"}
    dump = skipped.filter(pl.col("site") == "danbooru")
    lines = (layout.home / dump["file"][0]).read_text().splitlines()
    broken = {n for n, line in enumerate(lines, 1) if _broken(line)}
    assert broken == set(dump["record"])


def test_posts_cover_the_cases_ingestion_must_handle(demo):
    _, build = demo
    posts = build.posts
    shared_md5 = (
        posts.filter(pl.col("has_image") & ~pl.col("superseded"))
        .group_by("md5")
        .agg(pl.col("site").n_unique().alias("sites"))
    )
    assert shared_md5.filter(pl.col("sites") > 1).height >= 30
    assert posts["is_deleted"].sum() >= 20 and posts["is_video"].sum() >= 20
    assert posts["superseded"].sum() == 20  # dump records replaced by newer API records
    assert (posts["age_days"] < 30).sum() >= 50  # immature posts
    assert posts.filter(pl.col("has_image"))["image_id"].n_unique() == 600


def test_scores_carry_rating_and_age_bias(demo):
    _, build = demo
    mature = build.posts.filter((pl.col("age_days") > 365) & (pl.col("site") == "danbooru"))
    median = dict(mature.group_by("rating").agg(pl.col("score").median()).iter_rows())
    assert median["e"] > 3 * median["g"] and median["q"] > median["g"]
    by_age = (
        build.posts.with_columns(young=pl.col("age_days") < 30)
        .group_by("young")
        .agg(pl.col("score").median())
    )
    young = dict(by_age.iter_rows())
    assert young[True] < young[False] / 3
    assert (build.posts["score"] < 0).sum() > 0


@pytest.mark.parametrize(
    ("fixture", "kind", "pick"),
    [
        ("danbooru/grabber_danbooru_posts_2020.json", "danbooru_api", lambda d: d[0]),
        ("e621/grabber_e621_posts_2021.json", "e621_api", lambda d: d["posts"][0]),
        (
            "derpibooru/grabber_derpibooru_search_2020.json",
            "derpibooru_api",
            lambda d: d["images"][0],
        ),
        ("gelbooru/booru-rs_gelbooru_posts_2023.json", "gelbooru_json", lambda d: d["post"][0]),
    ],
)
def test_records_have_every_field_of_the_real_api(demo, fixture, kind, pick):
    layout, build = demo
    real = pick(json.loads(shared_path(f"fixtures/booru/{fixture}").read_text()))
    first_page = next(f for f in _files(build, kind) if "-p001." in f["path"])
    ours = pick(_load(layout, first_page))
    assert set(real) <= set(ours)


@pytest.mark.parametrize(
    ("fixture", "kind", "pick", "nested"),
    [
        (
            "e621/grabber_e621_posts_2021.json",
            "e621_api",
            lambda d: d["posts"][0],
            ("file", "sample", "preview"),
        ),
        (
            "derpibooru/grabber_derpibooru_search_2020.json",
            "derpibooru_api",
            lambda d: d["images"][0],
            ("representations",),
        ),
    ],
)
def test_nested_url_objects_have_every_field_of_the_real_api(demo, fixture, kind, pick, nested):
    layout, build = demo
    real = pick(json.loads(shared_path(f"fixtures/booru/{fixture}").read_text()))
    first_page = next(f for f in _files(build, kind) if "-p001." in f["path"])
    ours = pick(_load(layout, first_page))
    for name in nested:
        assert set(real[name]) <= set(ours[name]), name


def test_demo_urls_follow_the_real_layouts(demo):
    """A Danbooru post without a sample, and Gelbooru's, point their sample at the original
    (Danbooru) or write "" (Gelbooru), as the real pages do."""
    layout, build = demo
    danbooru = _load(
        layout, next(f for f in _files(build, "danbooru_api") if "-p001." in f["path"])
    )
    shown = [p for p in danbooru if "file_url" in p]
    small = [p for p in shown if not p["has_large"]]
    assert small and all(p["large_file_url"] == p["file_url"] for p in small)
    large = [p for p in shown if p["has_large"]]
    assert large and all("/sample/" in p["large_file_url"] for p in large)
    gelbooru = _load(
        layout, next(f for f in _files(build, "gelbooru_json") if "-p001." in f["path"])
    )
    posts = gelbooru["post"]
    assert {bool(p["sample_url"]) for p in posts} == {True, False}
    assert all(bool(p["sample_url"]) == bool(p["sample"]) for p in posts)


def test_dump_and_export_have_every_field_of_the_real_ones(demo):
    layout, build = demo
    real = json.loads(
        shared_path(
            "fixtures/booru/danbooru/danbooru2021_metadata_record_from_readme.jsonl"
        ).read_text()
    )
    ours = json.loads(_load(layout, _files(build, "danbooru_dump")[0])[0])
    assert set(real) == set(ours)
    header = shared_path("fixtures/booru/e621/DERIVED_e621_db_export_layout_posts.csv")
    real_columns = header.read_text().splitlines()[0].split(",")
    assert set(real_columns) <= set(_load(layout, _files(build, "e621_csv")[0])[0])
