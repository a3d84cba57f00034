"""normalized_scores brought up to date file by file equals it worked out at once, and a run
writes only what changed: the parts it touched, the change file the catalog applies."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assets.normalize import changes, store
from assets.normalize.normalize import normalize_files, update
from orchestration.settings import NormalizeSettings
from orchestration.sqlfiles import run_script

SETTINGS = NormalizeSettings()


@pytest.fixture(scope="module")
def posts_files(demo_scored, tmp_path_factory) -> list[Path]:
    """The demo's raw_posts tables, laid out as raw_posts keeps them (posts/<site>/<name>)."""
    files, _ = demo_scored
    root = tmp_path_factory.mktemp("raw_posts")
    laid = []
    for path in files:
        site, name = path.name.split("-", 1)
        target = root / site / name.replace(".posts.parquet", ".parquet")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
        laid.append(target)
    return sorted(laid, key=lambda p: p.name)


def _run(root: Path, files: list[Path], tmp: Path):
    return update(root, files, SETTINGS, tmp / "scratch")


def test_file_by_file_equals_all_at_once(posts_files, tmp_path):
    root = tmp_path / "normalized"
    first = _run(root, posts_files[:4], tmp_path)
    assert first.mode == "full"
    modes = [_run(root, posts_files[: n + 1], tmp_path).mode for n in range(4, len(posts_files))]
    assert set(modes) == {"incremental"}
    assert _run(root, posts_files, tmp_path).mode == "unchanged"
    assert store.read_scores(root).equals(normalize_files(posts_files, SETTINGS))
    # every run left a change file; the catalog can follow them from the first full one
    listed = changes.listed(root)
    assert [c.seq for c in listed] == list(range(1, len(modes) + 2)) and listed[0].full
    assert changes.since(root, 1) is not None and changes.since(root, 0) is None


def test_a_run_rewrites_only_the_parts_it_touched(posts_files, tmp_path):
    root = tmp_path / "normalized"
    _run(root, posts_files[:-1], tmp_path)
    before = {p: p.stat().st_mtime_ns for p in store.part_files(root)}
    outcome = _run(root, posts_files, tmp_path)
    after = {p: p.stat().st_mtime_ns for p in store.part_files(root)}
    rewritten = {p for p in after if before.get(p) != after[p]}
    assert 0 < len(rewritten) == outcome.parts_written < len(after)
    site = posts_files[-1].parent.name
    assert {p.parent.name for p in rewritten} == {site}


def test_a_newer_record_moves_its_post_and_the_change_file_says_so(posts_files, tmp_path):
    """A later file re-delivers one post with another rating and more votes: the post leaves
    its old group for the new one, both are worked out again, and the change file holds its
    whole new record; posts whose values moved with it are listed as values."""
    root = tmp_path / "normalized"
    _run(root, posts_files, tmp_path)
    old = store.read_scores(root)
    source = posts_files[0]
    raw = pl.read_parquet(source)
    post = raw.filter(pl.col("score").is_not_null()).sort("score").head(1)
    moved = post.with_columns(
        rating=pl.when(pl.col("rating") == "e").then(pl.lit("g")).otherwise(pl.lit("e")),
        score=pl.col("score") + 10_000,
        updated_at=pl.col("updated_at") + timedelta(days=1),
        ingested_at=pl.col("ingested_at") + timedelta(days=1),
        source_file=pl.lit(f"{source.parent.name}/again.json"),
    )
    again = source.parent / "again.parquet"
    moved.write_parquet(again)
    outcome = _run(root, [*posts_files, again], tmp_path)
    assert outcome.mode == "incremental"
    new = store.read_scores(root)
    assert new.equals(normalize_files([*posts_files, again], SETTINGS))
    key = post.select("site", "post_id").row(0)
    row = new.filter(pl.col("site") == key[0], pl.col("post_id") == key[1])
    assert row["rating"].item() == moved["rating"].item()
    (change,) = [c for c in changes.listed(root) if c.seq == outcome.seq]
    frame = pl.read_parquet(change.path)
    upsert = frame.filter(pl.col("kind") == changes.UPSERT)
    assert upsert.select("site", "post_id").rows() == [key]
    assert upsert["tags"].to_list() == moved["tags"].to_list()  # the whole raw record
    values = frame.filter(pl.col("kind") == changes.VALUES)
    joined = values.join(old, on=["site", "post_id"], suffix="_old")
    differ = pl.lit(False)
    for column in ("norm_score", "is_canonical", "immature"):
        differ = differ | pl.col(column).ne_missing(pl.col(f"{column}_old"))
    assert joined.height == values.height > 0  # the reference moved: others' scores too
    assert joined.filter(differ).height == joined.height  # and only posts that changed


def test_a_file_no_longer_read_works_everything_out_again(posts_files, tmp_path):
    root = tmp_path / "normalized"
    _run(root, posts_files, tmp_path)
    outcome = _run(root, posts_files[1:], tmp_path)
    assert outcome.mode == "full" and "no longer read" in outcome.reason
    assert store.read_scores(root).equals(normalize_files(posts_files[1:], SETTINGS))
    assert changes.since(root, outcome.seq - 1) is None  # the catalog reads every post


def test_other_settings_work_everything_out_again_but_memory_does_not(posts_files, tmp_path):
    root = tmp_path / "normalized"
    _run(root, posts_files, tmp_path)
    small = SETTINGS.model_copy(update={"memory_mb": 128, "batch_rows": 1000})
    assert update(root, posts_files, small, tmp_path).mode == "unchanged"
    other = SETTINGS.model_copy(update={"period": "6mo"})
    assert update(root, posts_files, other, tmp_path).mode == "full"


def test_small_batches_give_the_same_scores(posts_files, tmp_path):
    small = SETTINGS.model_copy(update={"batch_rows": 1000})
    assert normalize_files(posts_files, small).equals(normalize_files(posts_files, SETTINGS))


def test_on_an_object_root(posts_files, memory_root, tmp_path):
    from orchestration.objectstore import location

    root = location(memory_root) / "normalized_scores"
    _run(root, posts_files[:-2], tmp_path)
    _run(root, posts_files, tmp_path)
    assert store.read_scores(root).equals(normalize_files(posts_files, SETTINGS))


@settings(max_examples=40, deadline=None)
@given(
    days=st.lists(st.integers(-40_000, 40_000), min_size=1, max_size=30),
    period=st.sampled_from(["1y", "2y", "5y", "1mo", "5mo", "7mo", "1q", "2q"]),
)
def test_the_sql_period_is_polars_truncate(days, period):
    """The period SQL gives a post is the one polars' dt.truncate gives (the cohorts'
    definition), before 1970 too."""
    from assets.normalize.normalize import _months

    moments = pl.Series(
        "t", [datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=d, hours=13) for d in days]
    ).cast(pl.Datetime("us", "UTC"))
    frame = pl.DataFrame({"t": moments})
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    run_script(con, "normalize/macros")
    got = [
        r[0] for r in con.execute("SELECT period_of(t, ?) FROM frame", [_months(period)]).fetchall()
    ]
    want = frame["t"].dt.truncate(period).cast(pl.Date).cast(pl.String).to_list()
    assert got == want


def test_memory_is_capped_by_the_setting(tmp_path):
    from assets.normalize.normalize import _connection

    with _connection(SETTINGS.model_copy(update={"memory_mb": 256}), tmp_path) as con:
        limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert limit.replace(" ", "") in ("256.0MiB", "244.1MiB", "256MiB", "244MiB"), limit
