"""Which evaluation sets need evaluating: the question the evaluations sensor and `scoretag
evaluate` both ask, answered from the instance, so that neither repeats what the other did.

A set is evaluated again when its mark (assets/evaluation/paths.py: its files and the active
head) changes; under a new head it is scored from cached vectors alone.
"""

from __future__ import annotations

import time

import dagster as dg

from assets.evaluation.paths import set_mark, set_names, set_root
from assets.evaluation.sets import newest_change
from orchestration.inbox import latest_data_version
from orchestration.jobs import IMAGE_EVALUATIONS
from orchestration.storage import Layout

EVALUATION_SETS = "evaluation_sets"  # the dynamic partitions of image_evaluations
SETTLE_SECONDS = 30
"""A set with a file changed more recently than this may still be being written: wait."""


def evaluated_mark(instance: dg.DagsterInstance, name: str) -> str | None:
    """The set's mark when its partition last materialized."""
    return latest_data_version(instance, IMAGE_EVALUATIONS, name)


def settled(layout: Layout, name: str, now: float | None = None) -> bool:
    return newest_change(set_root(layout, name)) <= (now or time.time()) - SETTLE_SECONDS


def is_stale(instance: dg.DagsterInstance, layout: Layout, name: str) -> bool:
    """Never evaluated, or its files or the active head changed since."""
    return evaluated_mark(instance, name) != set_mark(layout, name)


def stale_sets(instance: dg.DagsterInstance, layout: Layout) -> dict[str, str]:
    """Settled sets never evaluated, or changed (or under another head) since: name -> mark."""
    now = time.time()
    marks = {n: set_mark(layout, n) for n in set_names(layout) if settled(layout, n, now)}
    return {n: m for n, m in marks.items() if evaluated_mark(instance, n) != m}


def register_sets(instance: dg.DagsterInstance, names: list[str]) -> list[str]:
    """Add the sets' partitions that do not exist yet; returns the new ones."""
    known = set(instance.get_dynamic_partitions(EVALUATION_SETS))
    new = [n for n in names if n not in known]
    if new:
        instance.add_dynamic_partitions(EVALUATION_SETS, new)
    return new
