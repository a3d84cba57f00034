"""`scoretag bench images`, small: the figures it documents, and what its rescans read."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from click.testing import CliRunner

from scoretag.cli import cli


def test_bench_images_rescans_only_what_is_new(tmp_path: Path):
    result = CliRunner().invoke(
        cli, ["bench", "images", "--files", "3000", "--tars", "2", "--workdir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["files"] == 3000 and figures["files_kind"].startswith("empty")
    new = figures["new_files"]
    assert figures["indexed"] == 3000 + 3 * new
    first, rescan = figures["first_scan"], figures["rescan"]
    assert first["folders_listed"] == first["folders"] and first["tars_read"] == 2
    # the root, which gained a folder, the new folder, and shards/, which gained a tar
    assert rescan["folders_listed"] == 3 and rescan["tars_read"] == 1
    # a day's downloads: the root (which gained fetched/), fetched/, the day, its site and
    # the md5 folders the day's files went to; no other md5 folder, no tar
    day = {hashlib.md5(str(i).encode()).hexdigest()[:2] for i in range(3000 + new, 3000 + 2 * new)}
    assert figures["rescan_fetched"]["folders_listed"] == 4 + len(day)
    assert figures["rescan_fetched"]["tars_read"] == figures["rescan_spread"]["tars_read"] == 0
    assert figures["embeddings_partition_requested"] == figures["pool_located"] > 0
    assert figures["scans_by_partition_and_pool"] == 0
    for key in ("first_scan_seconds", "rescan_seconds", "rescan_over_first", "peak_rss_mb"):
        assert figures[key] > 0
    assert list(tmp_path.iterdir()) == []  # its folders are removed
