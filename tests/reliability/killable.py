"""Run a stage as the pipeline does, slowed down or paused at a chosen point, so that a test
can SIGKILL it there (or start a second run beside it). The hooks live here: product code
never sleeps for a test.

python -m tests.reliability.killable embed HOME PARTITION SHARD_SIZE SECONDS_PER_BATCH
python -m tests.reliability.killable score HOME POINT RELEASE
python -m tests.reliability.killable export HOME RELEASE EXPORT_ARGS...

`embed` materializes embeddings of one raw file, sleeping before each batch. `score`
materializes scored_catalog and prints `at POINT` when it reaches POINT, then waits there
until the file RELEASE exists (at most five minutes) and goes on:
  scores_written  inside the scoring transaction: the scores inserted, the head's cursor
                  advanced, not yet committed
  committed       scoring committed, retention not yet run, the connection still open (the
                  write-ahead log not checkpointed into the file)
`export` runs `scoretag --home HOME export EXPORT_ARGS...` and holds at `at manifest`: every
shard renamed into place, the manifest not yet written.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import dagster as dg

# Where each point is: (SQL script, before or after it runs).
POINTS = {
    "scores_written": ("catalog/advance_cursor", "after"),
    "committed": ("catalog/retention", "before"),
}


def embed(home: str, partition: str, shard_size: str, pause: str) -> int:
    from assets.embeddings.encode import Encoder
    from orchestration.storage import Layout
    from tests.embeddings.conftest import materialize

    encode = Encoder.__call__

    def slow(self, chunks):
        time.sleep(float(pause))
        return encode(self, chunks)

    Encoder.__call__ = slow
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize(
            Layout(home=Path(home)), partition, instance, batch_size=8, shard_size=int(shard_size)
        )
    return 0 if result.success else 1


def score(home: str, point: str, release: str) -> int:
    from assets.catalog import writer
    from tests.reliability.conftest import materialize_catalog

    script, when = POINTS[point]
    run_script = writer.run_script

    def paused(con, name, params=None):
        if name == script and when == "before":
            _hold(point, Path(release))
        result = run_script(con, name, params)
        if name == script and when == "after":
            _hold(point, Path(release))
        return result

    writer.run_script = paused
    # On the instance DAGSTER_HOME names when a test gives one (its pools then apply).
    if "DAGSTER_HOME" in os.environ:
        with dg.DagsterInstance.get() as instance:
            result = materialize_catalog(Path(home), instance=instance, checks=False)
    else:
        result = materialize_catalog(Path(home), checks=False)
    return 0 if result.success else 1


def export(home: str, release: str, *args: str) -> int:
    from assets.captions import manifest
    from scoretag.cli import cli

    write = manifest.write

    def held(out, written):
        _hold("manifest", Path(release))
        return write(out, written)

    manifest.write = held
    return cli(["--home", home, "export", *args], standalone_mode=False) or 0


def _hold(point: str, release: Path) -> None:
    print(f"at {point}", flush=True)
    deadline = time.monotonic() + 300
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    sys.exit({"embed": embed, "score": score, "export": export}[command](*args))
