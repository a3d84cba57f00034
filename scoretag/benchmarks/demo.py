"""`scoretag bench demo`: how long the demo data takes to build."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from orchestration.settings import DemoSettings
from orchestration.storage import Layout
from scoretag.benchmarks.memory import peak_rss_mb


def demo_build(seed: int = 0, workers: int | None = None) -> dict:
    """Build the full-size demo dataset into a fresh folder: the "few seconds" of `make demo`."""
    from scoretag.demo.build import build_demo

    settings = DemoSettings(seed=seed)
    with tempfile.TemporaryDirectory(prefix="scoretag-bench-") as tmp:
        started = time.perf_counter()
        result = build_demo(Layout(home=Path(tmp)), settings, workers=workers)
        seconds = time.perf_counter() - started
        files = result.manifest["files"]
    return {
        "bench": "demo",
        "cores": os.cpu_count(),
        "workers": workers or os.cpu_count(),
        "posts": result.posts.height,
        "images": result.images.height,
        "files": len(files),
        "bytes": sum(f["bytes"] for f in files),
        "seconds": round(seconds, 3),
        "images_per_s": round(result.images.height / seconds, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
