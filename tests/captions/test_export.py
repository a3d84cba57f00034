"""An export of a hand-made catalog: calibration made once and kept, the filter, images
found or counted as missing, and the same buckets as `scoretag query bucket_distribution`."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest

from assets.captions.calibration import Policy, from_record
from assets.captions.captions import CaptionRules
from assets.captions.export import (
    CalibrationNeeded,
    Images,
    Request,
    calibrate,
    connect,
    export_catalog,
)
from assets.captions.formats import read_rows
from assets.captions.paths import calibration_dir
from assets.captions.selection import IMAGE_IN_TAR, IMAGE_NOT_FOUND, IMAGE_OUTSIDE_ROOT, Filter
from assets.captions.shards import Target
from assets.catalog.queries import load_queries, run
from tests.captions.conftest import HEAD, _post, add_scores, image_bytes, sha512_table
from tests.images.helpers import index_of

NOW = datetime(2026, 6, 1, tzinfo=UTC)
ABSOLUTE = Policy(name="absolute")


def _request(home, fmt="parquet", out=None, where=None, policy=ABSOLUTE, **rules) -> Request:
    where = where or Filter()
    rules = CaptionRules(min_bucket=where.min_bucket, **rules)
    target = Target(fmt, out or home.home / "out" / fmt, 4, image_root=home.images)
    return Request(target, rules, where, policy, calibration_dir(home))


def _images(home) -> Images:
    return Images(home.images, lambda: index_of(home.home, home.images), sha512=sha512_table)


def _export(home, request=None, writable=True, now=NOW):
    return export_catalog(home.catalog, request or _request(home), _images(home), writable, now)


def _rows(result, out: Path) -> pl.DataFrame:
    shards = result.outcome.manifest["shards"]
    return pl.concat([read_rows("parquet", out / s["name"]) for s in shards])


def _stored(home) -> list[tuple]:
    with duckdb.connect(str(home.catalog), read_only=True) as con:
        return con.execute(
            "SELECT bucket, min_score, max_score, created_at FROM calibrations ORDER BY bucket"
        ).fetchall()


def test_first_export_calibrates_and_selects_by_the_stored_buckets(home):
    result = _export(home)
    assert result.calibrated_now and result.head == HEAD
    stored = _stored(home)
    assert [(b, round(low, 2), round(high, 2)) for b, low, high, _ in stored] == [
        (b, 0.0 if b == 1 else b / 10, 1.0 if b == 9 else (b + 1) / 10) for b in range(1, 10)
    ]
    rows = _rows(result, home.home / "out" / "parquet")
    # danbooru:9 is deleted, danbooru:3 shares e621:3's image (canonical); e621:10 has no file
    assert result.selected == 19 and result.dropped == {IMAGE_NOT_FOUND: 1}
    assert rows.height == 18 and result.rows == 18
    keys = [f"{s}:{i}" for s, i in rows.select("site", "post_id").iter_rows()]
    assert keys == sorted(keys, key=lambda k: (k.split(":")[0], int(k.split(":")[1])))
    assert "danbooru:3" not in keys and "danbooru:9" not in keys and "e621:3" in keys
    expected = {k: max(1, int(k.split(":")[1]) - 1) for k in keys if not k.startswith("derpi")}
    assert {k: b for k, b in zip(keys, rows["bucket"], strict=True) if k in expected} == expected
    assert dict(zip(keys, rows["bucket"], strict=True))["derpibooru:1"] == 5  # 0.55


def test_the_philomena_post_is_found_by_sha512_and_captioned(home):
    rows = _rows(_export(home), home.home / "out" / "parquet")
    pony = rows.filter(pl.col("site") == "derpibooru").row(0, named=True)
    assert pony["filename"] == "pony.png" and pony["md5"] is None
    assert pony["caption"].endswith("rating_safe, yuta, open mouth, pony, safe")


def test_cut_points_are_kept_when_the_catalog_grows(home):
    _export(home)
    before = _stored(home)
    # ten new posts, all scoring 0.99: quantile cut-points would move, stored ones do not
    add_scores(home.catalog, [_post("gelbooru", i, score=0.99) for i in range(1, 11)])
    result = _export(home, now=datetime(2027, 1, 1, tzinfo=UTC))
    assert not result.calibrated_now and _stored(home) == before
    assert result.buckets[9] == 10 + 1  # the new posts, and e621:10 (0.95)


def test_a_read_only_export_asks_for_the_calibration_first(home):
    with pytest.raises(CalibrationNeeded, match=HEAD):
        _export(home, writable=False)
    _export(home)
    assert _export(home, writable=False).rows == 18  # calibrated: read-only is enough


def test_recalibration_replaces_the_rows_and_the_record(home):
    _export(home)
    with connect(home.catalog, writable=True) as con:
        made = calibrate(con, HEAD, Policy(name="quantile"), calibration_dir(home), NOW)
    assert made.policy == "quantile" and made.images == 19  # live images under h1
    assert sum(made.shares) == pytest.approx(1.0)
    stored = _stored(home)
    assert len(stored) == 9 and [round(r[1], 6) for r in stored[1:]] == [
        round(s, 6) for s in made.starts
    ]
    # the settings still say absolute: the stored quantile cut-points stay, with a warning
    result = _export(home)
    assert result.calibration.policy == "quantile"
    assert "scoretag calibrate --force" in result.warnings[0]
    # the record beside the export holds the same cut-points (evaluations read it there)
    record = from_record(calibration_dir(home) / f"{HEAD}.json", HEAD)
    assert record.starts == made.starts and record.policy == "quantile"
    assert from_record(calibration_dir(home) / f"{HEAD}.json", "another head") is None


def test_bucket_distribution_query_reads_the_same_buckets(home):
    with connect(home.catalog, writable=True) as con:
        calibrate(con, HEAD, Policy(name="quantile"), calibration_dir(home), NOW)
    everything = Filter(min_bucket=1)
    result = _export(home, _request(home, where=everything, policy=Policy(name="quantile")))
    query = load_queries()["bucket_distribution"]
    with duckdb.connect(str(home.catalog), read_only=True) as con:
        per_site = pl.from_arrow(run(con, query.sql, {}))
        posts = con.execute(
            "SELECT post_key, image_key, is_deleted FROM catalog WHERE aesthetic_score IS NOT NULL"
        ).pl()
    assert set(per_site["bucket_source"]) == {"calibration"}
    # the query counts every scored post; the export one live post per image
    assert per_site["scored"].sum() == posts.height == 21
    counts = per_site.select(pl.col(f"score_{b}").sum() for b in range(1, 10)).row(0)
    exported = [result.buckets.get(b, 0) for b in range(1, 10)]
    extra = posts.height - result.selected  # danbooru:3 (bucket of e621:3) and danbooru:9
    assert sum(counts) - sum(exported) == extra == 2
    assert all(q >= e for q, e in zip(counts, exported, strict=True))


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (Filter(min_bucket=8), {"danbooru:10", "e621:9", "e621:10"}),
        (Filter(min_bucket=8, ratings=("g",)), {"e621:9"}),
        (Filter(min_bucket=5, sites=("derpibooru",)), {"derpibooru:1"}),
        (
            Filter(min_bucket=2, sites=("danbooru",)),
            {f"danbooru:{i}" for i in (3, 4, 5, 6, 7, 8, 10)},
        ),
    ],
)
def test_the_filter(home, where: Filter, expected: set[str]):
    result = _export(home, _request(home, where=where))
    assert result.selected == len(expected)
    manifest = result.outcome.manifest
    assert manifest["filter"]["min_bucket"] == where.min_bucket
    assert manifest["caption"]["min_bucket"] == where.min_bucket
    if "e621:10" in expected:
        assert result.dropped == {IMAGE_NOT_FOUND: 1}
    # a site filter picks danbooru:3 for the image e621:3 also shows
    assert ("danbooru:3" in expected) == (where.sites == ("danbooru",))


def test_an_empty_selection_writes_an_empty_export_and_says_why(home):
    result = _export(home, _request(home, where=Filter(min_bucket=9, sites=("gelbooru",))))
    assert result.selected == 0 and result.rows == 0 and result.outcome.manifest["shards"] == []
    assert "no post matches the filter (bucket >= 9" in result.message


def test_no_active_head_means_nothing_to_export(home):
    with duckdb.connect(str(home.catalog)) as con:
        con.execute("UPDATE heads SET active = false")
    result = _export(home)
    assert result.head is None and result.outcome is None
    assert "no head is active" in result.message


def test_a_missing_catalog_is_a_clear_error(tmp_path: Path, home):
    with pytest.raises(FileNotFoundError, match="run the pipeline first"):
        export_catalog(tmp_path / "none.duckdb", _request(home), _images(home), True, NOW)


def test_formats_that_need_loose_files_leave_tar_members_out(home):
    import tarfile

    md5 = _post("danbooru", 5)["md5"]
    (home.images / f"{md5}.png").unlink()
    with tarfile.open(home.images / "shard.tar", "w") as tar:
        tar.add(home.images / f"{_post('danbooru', 7)['md5']}.png", arcname=f"{md5}.png")
    kohya = _export(home, _request(home, "kohya_json"))
    assert kohya.dropped == {IMAGE_NOT_FOUND: 1, IMAGE_IN_TAR: 1}
    # SimpleTuner's parquet backend takes no null filename: the member is left out, counted
    parquet = _export(home, _request(home))
    assert parquet.dropped == {IMAGE_NOT_FOUND: 1, IMAGE_IN_TAR: 1} and parquet.rows == 17
    assert _rows(parquet, home.home / "out" / "parquet")["filename"].null_count() == 0
    # the formats that carry the bytes take it, from the tar
    tars = _export(home, _request(home, "webdataset"))
    assert tars.dropped == {IMAGE_NOT_FOUND: 1} and tars.rows == 18
    images = {}
    for shard in tars.outcome.manifest["shards"]:
        with tarfile.open(home.home / "out" / "webdataset" / shard["name"]) as tar:
            images.update({m.name: tar.extractfile(m).read() for m in tar if ".jpg" in m.name})
    assert images["danbooru_5.jpg"] == image_bytes(_post("danbooru", 7)["md5"])


def test_a_calibration_scope_restricted_to_a_site_and_rating(home):
    scope = Policy(name="quantile", sites=("e621",), ratings=("g",))
    with connect(home.catalog, writable=True) as con:
        made = calibrate(con, HEAD, scope, calibration_dir(home), NOW)
    # e621's odd posts: scores .05 .25 .45 .65 .85
    assert made.images == 5 and made.scope == {"sites": ["e621"], "ratings": ["g"]}
    assert made.starts[0] == pytest.approx(0.05 + 0.2 * 0.8)  # the 20th percentile
    result = _export(home, _request(home, policy=scope))
    assert result.warnings == [] and result.calibration.scope == made.scope


def test_kohya_leaves_out_images_an_index_puts_outside_the_root(home, tmp_path: Path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    md5 = _post("e621", 10)["md5"]  # the post whose image is not under the root
    (outside / "picture.png").write_bytes(image_bytes("found by the index"))
    index = tmp_path / "index.csv"
    index.write_text(f"path,md5\n{outside / 'picture.png'},{md5}\n")
    found = index_of(home.home, home.images, image_index=str(index))
    images = Images(home.images, lambda: found, sha512=sha512_table)
    kohya = export_catalog(home.catalog, _request(home, "kohya"), images, True, NOW)
    assert kohya.dropped == {IMAGE_OUTSIDE_ROOT: 1}
    parquet = export_catalog(home.catalog, _request(home), images, True, NOW)
    assert parquet.dropped == {IMAGE_OUTSIDE_ROOT: 1} and parquet.rows == 18
    hf = export_catalog(home.catalog, _request(home, "hf"), images, True, NOW)
    assert hf.dropped == {} and hf.rows == 19
    shards = hf.outcome.manifest["shards"]
    rows = pl.concat([read_rows("hf", home.home / "out" / "hf" / s["name"]) for s in shards])
    assert rows.filter(pl.col("md5") == md5).height == 1


def test_a_catalog_held_by_another_process_is_waited_for_then_named(home):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(home.catalog)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        request = replace(_request(home), lock_timeout_s=0.3)
        with pytest.raises(OSError, match="is being written by process .* waited 0.3 s"):
            export_catalog(home.catalog, request, _images(home), False, NOW)
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert _export(home).rows == 18  # once it has let go


HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(60)
"""
