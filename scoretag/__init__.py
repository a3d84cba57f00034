"""scoretag: score-tagged caption shards from booru metadata, as one Dagster pipeline.

The pipeline itself runs in Dagster (`scoretag ui`, `scoretag run`); this package is what a
user runs outside it: the `scoretag` command (`scoretag.cli`), the demo data generator
(`scoretag.demo`), the benchmarks (`scoretag.benchmarks`) and a small Python API:

    import scoretag

    con = scoretag.open_catalog()                  # read-only DuckDB, as `scoretag query`
    con.sql("SELECT * FROM site_summary").pl()
    head = scoretag.load_head()                    # the active aesthetic head
    scoretag.score_embeddings(vectors, head)       # float32 scores in [0, 1]
    scoretag.score_images(["a.png", "b.jpg"])      # a polars frame: path, score, reason

Names are imported on first use, so `import scoretag` stays light (no torch, no Dagster).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "embed_images",
    "load_backbone",
    "load_head",
    "load_profile",
    "open_catalog",
    "score_embeddings",
    "score_images",
]

if TYPE_CHECKING:
    from scoretag.api import (
        embed_images,
        load_backbone,
        load_head,
        load_profile,
        open_catalog,
        score_embeddings,
        score_images,
    )


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("scoretag.api"), name)
    raise AttributeError(f"module 'scoretag' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
