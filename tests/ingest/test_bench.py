"""`scoretag bench ingest` on a small export: the fields it documents, each step's own peak
memory, and a step that dies is an error, not a bench waiting for ever."""

from __future__ import annotations

import os

import pytest

from scoretag.benchmarks import ingest as bench

FIELDS = {
    "bench",
    "posts",
    "csv_mb",
    "cores",
    "seconds",
    "posts_per_s",
    "ingest_seconds",
    "normalize_seconds",
    "duckdb_copy_seconds",
    "ratio_to_copy",
    "peak_rss_mb",
    "ingest_peak_rss_mb",
    "normalize_peak_rss_mb",
    "posts_loaded",
    "quarantined",
}


def _dies(results) -> None:
    os._exit(3)


def test_reports_the_documented_fields(tmp_path):
    result = bench.ingest_bench(posts=3_000, workdir=tmp_path)
    assert set(result) == FIELDS
    assert (result["posts"], result["posts_loaded"], result["quarantined"]) == (3_000, 3_000, 0)
    steps = (result["ingest_peak_rss_mb"], result["normalize_peak_rss_mb"])
    assert result["peak_rss_mb"] == max(steps) and min(steps) > 0
    assert not list(tmp_path.iterdir())  # the export and the tables are gone


def test_a_step_reports_its_own_peak_not_its_parents():
    # The parent's peak, well above a child's (some 700 MB: it imports torch with the
    # benchmarks package), which ru_maxrss would have reported.
    held = bytearray(1_200_000_000)
    for i in range(0, len(held), 4096):
        held[i] = 1
    assert bench.step_peak_mb() > 1_200
    del held
    assert bench._in_child(_peak) < 1_100


def _peak(results) -> None:
    results.put(bench.step_peak_mb())


def test_a_step_that_dies_is_an_error():
    with pytest.raises(RuntimeError, match=r"_dies exited \(3\) without a result"):
        bench._in_child(_dies)
