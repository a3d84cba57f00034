"""The embeddings step's progress reaches a listener in the same process (`scoretag run`'s
progress bar), and its metadata says which device it ran on."""

from __future__ import annotations

import dagster as dg

from orchestration.progress import listening
from tests.embeddings.conftest import E621_EXPORT, materialize, metadata


def test_progress_is_reported_per_batch_and_the_device_is_in_the_metadata(scored_home):
    reports = []
    with listening(lambda *report: reports.append(report)), dg.DagsterInstance.ephemeral() as i:
        result = materialize(scored_home, E621_EXPORT, i, batch_size=32)
    assert result.success
    tasks = {task for task, *_ in reports}
    assert tasks == {f"embeddings {E621_EXPORT}"}
    done = [d for _, d, _, _ in reports]
    assert done == sorted(done) and len(done) >= 2  # one report per model batch
    assert reports[-1][1:] == (119, 119, 4)  # done, total, failed
    assert metadata(result)["device"] == "cpu"
    reports.clear()
    materialize(scored_home, E621_EXPORT, dg.DagsterInstance.ephemeral())
    assert reports == []  # nothing left to embed: no bar
