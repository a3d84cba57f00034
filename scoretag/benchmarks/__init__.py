"""Benchmarks behind `scoretag bench`: each returns the figures it measured as a dict.

Speed and memory targets are checked here, never by timed tests.
"""

from __future__ import annotations

from collections.abc import Callable

from scoretag.benchmarks import (
    captions,
    catalog,
    daily,
    demo,
    embed,
    head,
    images,
    ingest,
    labels,
)

BENCHES: dict[str, Callable[[], dict]] = {
    "demo": demo.demo_build,
    "ingest": ingest.ingest_bench,
    "images": images.images_bench,
    "embed": embed.embed_bench,
    "head": head.head_bench,
    "labels": labels.labels_bench,
    "catalog": catalog.catalog_bench,
    "captions": captions.captions_bench,
    "daily": daily.daily_bench,
}
"""Every benchmark with its default parameters, as `make bench` runs them."""
