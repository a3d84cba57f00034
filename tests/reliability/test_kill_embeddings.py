"""SIGKILL during embeddings: a run killed at any moment (an OOM kill, a lost node) resumes
where its last committed shard ended and gives the embeddings an uninterrupted run gives."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import numpy as np

from orchestration.storage import Layout
from tests.embeddings.conftest import DANBOORU_DUMP, materialize, metadata, store_of

ROOT = Path(__file__).resolve().parents[2]
SHARD_SIZE = 16


def _kill_after_shards(layout: Layout, shards: int) -> int:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.reliability.killable",
            "embed",
            str(layout.home),
            DANBOORU_DUMP,
            str(SHARD_SIZE),
            "0.15",
        ],
        cwd=ROOT,
        start_new_session=True,  # its decoding workers die with it
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    store = store_of(layout)
    deadline = time.monotonic() + 120
    while len(store.shards(DANBOORU_DUMP)) < shards:
        assert process.poll() is None, process.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "no shards after 120 s"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    process.stderr.close()
    return process.pid


def _sorted(store) -> tuple[list[str], np.ndarray]:
    keys, vectors = store.read()
    order = np.argsort(keys.to_numpy())
    return keys.to_numpy()[order].tolist(), vectors[order]


def test_a_killed_run_resumes_without_redoing_finished_shards(scored_home, tmp_path):
    uninterrupted = Layout(home=tmp_path / "uninterrupted")
    shutil.copytree(scored_home.home, uninterrupted.home, symlinks=True)

    pid = _kill_after_shards(scored_home, 2)
    store = store_of(scored_home)
    # Had the kill landed while a shard was being written, its temporary file would be here:
    folder = store.shard_dir(DANBOORU_DUMP)
    in_flight = folder / f".part-{len(store.shards()):05d}.parquet.{pid}.tmp"
    in_flight.write_bytes(b"PAR1 half a shard")
    committed = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in store.shards()}
    assert len(committed) >= 2
    done = store.keys().len()
    assert done == SHARD_SIZE * len(committed)  # whole shards only, nothing partial visible
    assert not store.requested_path(DANBOORU_DUMP).exists()  # so `scoretag run` resumes it

    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize(scored_home, DANBOORU_DUMP, instance, shard_size=SHARD_SIZE)
    assert result.success
    meta = metadata(result)
    assert meta["cached_hits"] == done
    assert meta["embedded"] + meta["failed"] == meta["requested"] - done
    for path, (mtime, data) in committed.items():
        assert path.stat().st_mtime_ns == mtime and path.read_bytes() == data
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]  # orphan removed
    assert all(e.passed for e in result.get_asset_check_evaluations())

    with dg.DagsterInstance.ephemeral() as instance:
        assert materialize(uninterrupted, DANBOORU_DUMP, instance, shard_size=SHARD_SIZE).success
    keys, vectors = _sorted(store)
    want_keys, want = _sorted(store_of(uninterrupted))
    assert keys == want_keys and len(keys) == meta["requested"] - meta["failed"]
    assert np.allclose(vectors.astype(np.float32), want.astype(np.float32), atol=2e-3)
