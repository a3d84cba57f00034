"""Benchmarks' peak memory is the process's own: a step spawned by a parent holding a lot of
memory (a bench's setup) does not report the parent's peak as its own."""

from __future__ import annotations

import multiprocessing

from scoretag.benchmarks.memory import peak_rss_mb

HELD = 1_600_000_000  # bytes the parent holds while it spawns the child


def _report(results) -> None:
    results.put(peak_rss_mb())


def test_a_spawned_child_reports_its_own_peak_not_its_parents():
    held = bytearray(HELD)
    held[:: 1 << 12] = b"\x01" * len(range(0, HELD, 1 << 12))  # every page resident
    assert peak_rss_mb() * 1e6 > HELD
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    child = context.Process(target=_report, args=(results,))
    child.start()
    try:
        child_peak = results.get(timeout=120)
    finally:
        child.join(timeout=60)
    del held
    # The child holds its imports (torch, through scoretag: some 700 MB), well below what its
    # parent held; ru_maxrss alone, inherited across exec, would report more than HELD.
    assert 0 < child_peak * 1e6 < HELD * 0.75
