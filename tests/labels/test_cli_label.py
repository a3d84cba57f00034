"""`scoretag label import` and `export`: CSV in, CSV out, and nothing in from a bad file."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from click.testing import CliRunner

from assets.labels.store import LabelStore
from scoretag.cli import cli
from tests.labels.conftest import store_events

GOOD = """post_key,labeler,value,created_at
{a},ann,4,2024-03-01T10:00:00+00:00
{b},ann,2,2024-03-01T10:00:05.250Z
{a},bob,5,2024-03-02 08:30:00
danbooru:123456789,bob,3,2024-03-02T08:31:00+02:00
"""

BAD = """post_key,labeler,value,created_at
{a},ann,4,2024-03-01T10:00:00+00:00
{a},ann,6,2024-03-01T10:00:00+00:00
{b},,3,2024-03-01T10:00:00+00:00
{b},bob,x,yesterday
,bob,0,2024-03-01T10:00:00+00:00
{b},bob,3.0,2024-03-01T10:00:00+00:00
"""


def run(home: Path, *args: str):
    return CliRunner().invoke(cli, ["--home", str(home), "label", *args])


def two_keys(home: Path) -> dict[str, str]:
    pool = pl.read_parquet(home / "data" / "rating_pool" / "pool.parquet")
    return dict(zip("ab", pool["post_key"][:2], strict=True))


def test_import_then_export_round_trips(home, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text(GOOD.format(**two_keys(home)))
    imported = run(home, "import", str(source))
    assert imported.exit_code == 0, imported.output
    assert "Imported 4 labels" in imported.output
    assert "1 of these labels are for 1 posts not in the rating pool" in imported.output
    assert "danbooru:123456789" in imported.output

    again = run(home, "import", str(source))
    assert "Imported 0 labels" in again.output and "(4 already there)" in again.output

    with LabelStore(home / "labels.sqlite") as store:  # neither an undone label nor a skip
        store.add(two_keys(home)["b"], "cy", 1)
        store.add(two_keys(home)["a"], "cy", "skip")
        store.undo("cy")
        store.undo("cy")
    first, second = tmp_path / "out.csv", tmp_path / "again.csv"
    assert run(home, "export", str(first)).exit_code == 0
    exported = pl.read_csv(first, infer_schema=False)
    assert exported.columns == ["post_key", "labeler", "value", "created_at"]
    assert exported["value"].to_list() == ["4", "2", "5", "3"]
    assert exported["created_at"].to_list() == [
        "2024-03-01T10:00:00.000+00:00",
        "2024-03-01T10:00:05.250+00:00",
        "2024-03-02T08:30:00.000+00:00",
        "2024-03-02T06:31:00.000+00:00",
    ]

    other = tmp_path / "other"
    assert run(other, "import", str(first)).exit_code == 0
    assert run(other, "export", str(second)).exit_code == 0
    assert second.read_text() == first.read_text()
    assert set(store_events(other)["source"]) == {"import"}


def test_a_bad_csv_imports_nothing_and_names_every_bad_line(home, tmp_path):
    source = tmp_path / "bad.csv"
    source.write_text(BAD.format(**two_keys(home)))
    result = run(home, "import", str(source))
    assert result.exit_code == 1
    for expected in [
        "5 bad row(s), nothing imported",
        "line 3: value must be an integer from 1 to 5, got '6'",
        "line 4: labeler is empty",
        "line 5: value must be an integer from 1 to 5, got 'x'; "
        "created_at is not an ISO 8601 timestamp: 'yesterday'",
        "line 6: post_key is empty; value must be an integer from 1 to 5, got '0'",
        "line 7: value must be an integer from 1 to 5, got '3.0'",
    ]:
        assert expected in result.output, expected
    assert "line 2" not in result.output
    assert not (home / "labels.sqlite").exists() or store_events(home).height == 0


def test_a_missing_column_is_named(home, tmp_path):
    source = tmp_path / "short.csv"
    source.write_text("post_key,labeler,value\ndanbooru:1,ann,3\n")
    result = run(home, "import", str(source))
    assert result.exit_code == 1 and "missing column(s): created_at" in result.output


def test_export_without_a_store_says_so(tmp_path):
    result = run(tmp_path, "export", str(tmp_path / "out.csv"))
    assert result.exit_code == 1 and "nothing labeled yet" in result.output
