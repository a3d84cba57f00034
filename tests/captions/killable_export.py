"""Export synthetic rows as parquet shards, pausing after the first shard is staged, so that
a test can SIGKILL the export mid-way.

python -m tests.captions.killable_export OUT POSTS SEED
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from assets.captions import shards
from scoretag.benchmarks.captions import RULES, synthetic_posts

SHARD_SIZE = 10


def main(out: str, posts: str, seed: str) -> None:
    stage = shards.stage_shard

    def slow(index, captioned, target, known):
        staged = stage(index, captioned, target, known)
        print(f"staged {index}", flush=True)
        time.sleep(120)
        return staged

    shards.stage_shard = slow
    rows = synthetic_posts(int(posts), int(seed)).with_columns(bucket=5)
    target = shards.Target("parquet", Path(out), SHARD_SIZE, workers=1)
    shards.write_shards(rows, RULES, target, {})


if __name__ == "__main__":
    main(*sys.argv[1:])
