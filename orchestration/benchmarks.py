"""Benchmarks behind `scoretag bench`: each returns the figures it measured as a dict.

Speed and memory targets are checked here, never by timed tests.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from orchestration.settings import DemoSettings
from orchestration.storage import Layout


def peak_rss_mb() -> float:
    """Peak resident memory of this process and of its finished children, in MB."""
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KB on Linux
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) * scale / 1e6


def demo_build(seed: int = 0, workers: int | None = None) -> dict:
    """Build the full-size demo dataset into a fresh folder: the "few seconds" of `make demo`."""
    from orchestration.demo.build import build_demo

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


BENCHES: dict[str, Callable[[], dict]] = {"demo": demo_build}
"""Every benchmark with its default parameters, as `make bench` runs them."""
