"""The reader keeps nothing per post: duplicates are ruled out by the order of the ids as
batches are written, and otherwise counted and dropped by DuckDB within a memory limit."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from assets.ingest import reader
from assets.ingest.formats import ReadOptions
from assets.ingest.reader import IdOrder, ingest_file
from tests.ingest.test_e621 import row, write_export


def _ingest(path: Path, out: Path, batch_rows: int) -> tuple[reader.FileReport, pl.DataFrame]:
    files = [out / f"{name}.parquet" for name in ("posts", "quarantine", "skipped")]
    options = ReadOptions(batch_rows=batch_rows)
    report = ingest_file(path, *files, site="e621", options=options, threshold=1.0)
    return report, pl.read_parquet(files[0]).sort("record")


def _no_duckdb_count(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(path: Path) -> int:
        raise AssertionError("growing ids need no duplicate count")

    monkeypatch.setattr(reader, "_duplicates", fail)


def test_id_order_holds_one_id_and_knows_growing_ids_cannot_repeat():
    order = IdOrder()
    order.add(pl.Series([1, 2, 5], dtype=pl.Int64))
    order.add(pl.Series([], dtype=pl.Int64))
    order.add(pl.Series([6, 9], dtype=pl.Int64))
    assert order.growing and order.last == 9
    order.add(pl.Series([9, 10], dtype=pl.Int64))  # 9 again, across the batches
    assert not order.growing
    within = IdOrder()
    within.add(pl.Series([1, 3, 2], dtype=pl.Int64))
    assert not within.growing


def test_growing_ids_over_many_batches_are_not_counted_again(tmp_path, monkeypatch):
    _no_duckdb_count(monkeypatch)
    path = write_export(tmp_path / "posts-2024-01-03.csv", [row(i) for i in range(1, 12)])
    report, posts = _ingest(path, tmp_path / "out", batch_rows=3)
    assert (report.posts, report.duplicates) == (11, 0)
    assert posts["post_id"].to_list() == list(range(1, 12))


def test_a_post_repeated_in_a_later_batch_keeps_its_newest_record(tmp_path):
    rows = [row(i) for i in range(1, 6)]
    rows.append(row(3, score="40", updated_at="2024-02-01 00:00:00"))
    path = write_export(tmp_path / "posts-2024-01-03.csv", rows)
    report, posts = _ingest(path, tmp_path / "out", batch_rows=2)
    assert (report.posts, report.duplicates) == (5, 1)
    assert sorted(posts["post_id"]) == [1, 2, 3, 4, 5]
    assert posts.filter(pl.col("post_id") == 3)["score"].to_list() == [40]
    assert not list((tmp_path / "out").glob(".duckdb-spill-*"))  # the scratch folder is gone


def test_unordered_unique_ids_are_counted_and_the_file_is_kept(tmp_path):
    path = write_export(tmp_path / "posts-2024-01-03.csv", [row(i) for i in (5, 2, 9, 1)])
    report, posts = _ingest(path, tmp_path / "out", batch_rows=2)
    assert (report.posts, report.duplicates) == (4, 0)
    assert posts["post_id"].to_list() == [5, 2, 9, 1]


def test_duckdb_is_held_to_its_memory_limit_and_spills_beside_the_output(tmp_path):
    with reader._bounded(tmp_path) as con:
        limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
        spill = Path(con.execute("SELECT current_setting('temp_directory')").fetchone()[0])
    assert limit.replace(" ", "").lower() in {"512mb", "488.2mib"}
    assert spill.parent == tmp_path and not spill.exists()


def test_records_are_renumbered_row_group_by_row_group(tmp_path):
    """Rejected rows are known after the scan: the posts and the quarantine written before
    are renumbered one row group (one batch) at a time, the stamp in the footer kept."""
    rows: list[dict | str] = [row(i) for i in range(1, 12)]
    rows[2] = "3,100,2024-01-01"
    rows[7] = "8,broken"
    rows.append(row(12, md5="not-an-md5"))  # quarantined by coerce, after the scan
    path = write_export(tmp_path / "posts-2024-01-03.csv", rows)
    out = tmp_path / "out"
    report, posts = _ingest(path, out, batch_rows=2)
    expected = [i for i in range(1, 12) if i not in (3, 8)]
    assert posts.select("record").to_series().to_list() == expected
    assert posts["post_id"].to_list() == expected
    quarantine = pl.read_parquet(out / "quarantine.parquet").sort("record")
    assert quarantine["record"].to_list() == [3, 8, 12]
    assert reader.footer(out / "posts.parquet") == report.stamp.footer()
    assert pq.ParquetFile(out / "posts.parquet").num_row_groups > 1
