"""A raw dump that is mostly garbage stops at the quarantine threshold with a clear message,
and changes nothing downstream: no posts of it, no embeddings, normalized scores and the
catalog untouched. Only its quarantine table appears, to show why."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import polars as pl

from assets.ingest.paths import RawFile
from orchestration.storage import Layout
from tests.embeddings.conftest import DANBOORU_DUMP
from tests.reliability.conftest import materialize_catalog

# What the `scoretag` console script runs, in its own process: its real output.
SCORETAG = [sys.executable, "-c", "from scoretag.cli import main; main()"]
GARBAGE = "danbooru2021-posts000000000001.jsonl"


def _mostly_garbage(demo_layout: Layout, out: Path) -> Path:
    """A Danbooru dump: its first 30 records good, then 70 lines a broken export would hold."""
    good = (demo_layout.inbox / DANBOORU_DUMP).read_text().splitlines()[:30]
    kinds = ['{"id": "77", "md5": ', '{"id": "x", "rating": "?"}', "<html>502 Bad Gateway</html>"]
    junk = [kinds[i % 3] for i in range(70)]
    path = out / GARBAGE
    path.write_text("\n".join(good + junk) + "\n")
    return path


def _state(layout: Layout) -> dict[str, tuple[int, str]]:
    """Every file a later stage reads or writes (and the catalog), by mtime and content."""
    files = [p for p in layout.data.rglob("*") if p.is_file()]
    files += [p for p in layout.home.glob("catalog.duckdb*")]
    return {
        str(p.relative_to(layout.home)): (
            p.stat().st_mtime_ns,
            hashlib.sha256(p.read_bytes()).hexdigest(),
        )
        for p in files
    }


def test_a_mostly_garbage_dump_stops_at_the_threshold_and_changes_nothing(
    catalog_home, demo_layout, tmp_path
):
    assert materialize_catalog(catalog_home.home).success
    before = _state(catalog_home)
    dump = _mostly_garbage(demo_layout, tmp_path)

    done = subprocess.run(
        [*SCORETAG, "--home", str(catalog_home.home), "ingest", str(dump)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = " ".join((done.stdout + done.stderr).split())  # rich wraps long lines
    assert done.returncode == 1, output
    assert f"{GARBAGE}: 70 of 100 records (70.0%) could not be read" in output
    assert "more than the 1.0% allowed; nothing from this file was loaded" in output
    assert "Top reasons:" in output and "some files could not be ingested" in output
    for internals in ("Traceback", "Stack Trace", 'File "', "Warning", "ERROR"):
        assert internals not in output

    raw = RawFile("danbooru", GARBAGE)
    quarantine = raw.output(catalog_home, "quarantine")
    assert not raw.output(catalog_home, "posts").exists()
    assert pl.read_parquet(quarantine).height == 70  # the reasons are there to read
    after = _state(catalog_home)
    for side in ("quarantine", "skipped"):
        after.pop(str(raw.output(catalog_home, side).relative_to(catalog_home.home)), None)
    assert after == before
