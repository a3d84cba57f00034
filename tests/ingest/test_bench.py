"""`scoretag bench ingest`: its ingest step on a small export, each step's own peak memory,
and a step that dies is an error, not a bench waiting for ever."""

from __future__ import annotations

import os

import pytest

from scoretag.benchmarks import ingest as bench
from scoretag.benchmarks.memory import peak_rss_mb


def _dies(results) -> None:
    os._exit(3)


def test_the_ingest_step_reports_its_figures(tmp_path):
    """The ingest step as the bench runs it, in its own process (the normalize step is that
    stage's to test)."""
    csv = tmp_path / "posts-2026-11-01.csv"
    assert bench.write_e621_export(csv, 3_000) == csv.stat().st_size
    step = bench._in_child(bench._ingest, csv, tmp_path)
    assert (step["posts"], step["quarantined"]) == (3_000, 0)
    assert step["seconds"] > 0 and step["peak_rss_mb"] > 0


def test_a_step_reports_its_own_peak_not_its_parents():
    # The parent's peak, well above a child's (some 700 MB: it imports torch with the
    # benchmarks package), which ru_maxrss would have reported.
    held = bytearray(1_200_000_000)
    for i in range(0, len(held), 4096):
        held[i] = 1
    assert peak_rss_mb() > 1_200
    del held
    assert bench._in_child(_peak) < 1_100


def _peak(results) -> None:
    results.put(peak_rss_mb())


def test_a_step_that_dies_is_an_error():
    with pytest.raises(RuntimeError, match=r"_dies exited \(3\) without a result"):
        bench._in_child(_dies)
