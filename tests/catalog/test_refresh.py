"""The catalog's posts follow normalized_scores by its change files: the same rows as a catalog
refreshed from every post, with only the changed rows written again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from assets.catalog.refresh import refresh
from assets.catalog.writer import change_seq, open_catalog
from assets.ingest.paths import posts_files
from assets.normalize.assets import scores_root
from assets.normalize.normalize import update
from orchestration.settings import NormalizeSettings

NOW = datetime(2026, 12, 1, tzinfo=UTC)
COMPARED = "SELECT * EXCLUDE (loaded_at, added_seq, changed_seq) FROM posts ORDER BY post_key"


def _normalize(layout, tmp_path):
    return update(
        scores_root(layout), posts_files(layout), NormalizeSettings(), tmp_path / "scratch"
    )


def _posts(path) -> pl.DataFrame:
    with open_catalog(path) as con:
        return con.execute(COMPARED).pl()


def _again(layout) -> None:
    """A later file: one post re-delivered with a new rating and tags, and two new posts."""
    first = sorted(posts_files(layout), key=lambda p: p.name)[0]
    raw = pl.read_parquet(first)
    later = {
        "updated_at": pl.col("updated_at") + timedelta(days=2),
        "ingested_at": pl.col("ingested_at") + timedelta(days=2),
    }
    changed = raw.head(1).with_columns(
        rating=pl.when(pl.col("rating") == "e").then(pl.lit("s")).otherwise(pl.lit("e")),
        tags=pl.concat_list("tags", pl.lit(["re_tagged"])),
        **later,
    )
    new = raw.slice(1, 2).with_columns(
        post_id=pl.col("post_id") + 10_000_000,
        md5=pl.col("md5").str.reverse(),
        **later,
    )
    name = "later.json"
    frame = pl.concat([changed, new]).with_columns(
        source_file=pl.lit(f"{first.parent.name}/{name}")
    )
    frame.write_parquet(first.parent / f"{name}.parquet")


def test_change_files_give_the_rows_a_full_refresh_gives(scored_home, tmp_path):
    layout = scored_home
    _normalize(layout, tmp_path)
    with open_catalog(layout.catalog) as con:
        first = refresh(con, layout, NOW)
    assert first.mode == "full" and first.written > 0
    _again(layout)
    outcome = _normalize(layout, tmp_path)
    assert outcome.mode == "incremental"
    with open_catalog(layout.catalog) as con:
        before = change_seq(con)
        second = refresh(con, layout, NOW)
        touched = con.execute(
            "SELECT count(*) FROM posts WHERE changed_seq > ?", [before]
        ).fetchone()[0]
    assert second.mode == "changes" and second.files == 1
    assert second.written == 3  # the re-delivered post and the two new ones
    assert touched == second.written + second.updated
    fresh = tmp_path / "fresh.duckdb"
    with open_catalog(fresh) as con:
        assert refresh(con, layout, NOW).mode == "full"
    assert _posts(layout.catalog).equals(_posts(fresh))
    with open_catalog(layout.catalog) as con:
        seq = change_seq(con)
        third = refresh(con, layout, NOW)  # nothing new: nothing written
        # ... nor a change number taken: exports that recorded it have nothing to redo
        assert change_seq(con) == seq
    assert (third.mode, third.written, third.updated) == ("changes", 0, 0)


def test_a_catalog_behind_the_kept_change_files_reads_every_post(scored_home, tmp_path):
    layout = scored_home
    _normalize(layout, tmp_path)
    _again(layout)
    _normalize(layout, tmp_path)
    with open_catalog(layout.catalog) as con:
        done = refresh(con, layout, NOW)  # it never applied the first (full) run's
    assert done.mode == "full"
    with open_catalog(layout.catalog) as con:
        seq = change_seq(con)
        assert refresh(con, layout, NOW).written == 0  # a full refresh writes what differs
        assert change_seq(con) == seq
