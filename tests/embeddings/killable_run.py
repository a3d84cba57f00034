"""Embed one raw file as the asset does, slowly, so that a test can SIGKILL it mid-way.

python -m tests.embeddings.killable_run HOME PARTITION SHARD_SIZE SECONDS_PER_BATCH
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import dagster as dg

from assets.embeddings.encode import Encoder
from orchestration.storage import Layout
from tests.embeddings.conftest import materialize


def main(home: str, partition: str, shard_size: str, pause: str) -> None:
    encode = Encoder.__call__

    def slow(self, chunks):
        time.sleep(float(pause))
        return encode(self, chunks)

    Encoder.__call__ = slow
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize(
            Layout(home=Path(home)), partition, instance, batch_size=8, shard_size=int(shard_size)
        )
    sys.exit(0 if result.success else 1)


if __name__ == "__main__":
    main(*sys.argv[1:])
