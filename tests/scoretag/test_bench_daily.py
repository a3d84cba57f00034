"""`scoretag bench daily` on a small catalog: the day takes the incremental path at every
stage, and the JSON holds the figures the docs name."""

from __future__ import annotations

import json

from click.testing import CliRunner

from scoretag.cli import cli


def test_a_small_day_is_incremental_at_every_stage(tmp_path):
    args = ["bench", "daily", "--posts", "20000", "--new", "500", "--dim", "8"]
    result = CliRunner().invoke(cli, [*args, "--workdir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    for field in ("full_seconds", "daily_seconds", "daily_over_full", "peak_rss_mb"):
        assert found[field] > 0, field
    assert set(found["stages_daily"]) == {
        "ingest",
        "embed",
        "normalize",
        "catalog",
        "catalog_checkpoint",
        "export",
    }
    full, day = found["full"], found["daily"]
    assert full["normalize"]["mode"] == "full" and full["catalog"]["refresh"] == "full"
    assert full["catalog"]["scored"] == 20000 and not full["export"]["incremental"]
    assert day["ingested"] == day["embedded"] == 500
    assert day["normalize"]["mode"] == "incremental"
    assert day["normalize"]["changes"] == {"upserts": 500, "values": 0}  # young: no reference moved
    assert day["catalog"]["refresh"] == "changes" and day["catalog"]["written"] == 500
    assert day["catalog"]["scored"] == 500 and day["catalog"]["posts"] == 20500
    assert day["export"]["incremental"] and day["export"]["shards"]["kept"] > 0
    assert day["export"]["rows"] > full["export"]["rows"]
    assert list(tmp_path.iterdir()) == []  # the storage root is removed
