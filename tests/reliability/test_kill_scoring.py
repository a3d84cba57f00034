"""SIGKILL during scoring: the catalog holds all of a run's scores or none of them, readers
are kept out while it writes, and the rerun gives the scores of an uninterrupted run."""

from __future__ import annotations

import re
import shutil

import duckdb
import pytest

from assets.catalog.lock import CatalogBusy
from assets.catalog.queries import connect_read_only
from assets.catalog.writer import apply_retention, open_catalog
from assets.head.paths import registry
from orchestration import sqlfiles as statements
from tests.reliability.conftest import catalog_scores, materialize_catalog
from tests.reliability.driver import kill, reach, start


def _cursor(path) -> tuple:
    """The active head's cursor: posts looked at, and embedding shards read."""
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(
            "SELECT h.scored_through, (SELECT count(*) FROM head_shards WHERE head_version = "
            "h.version) FROM heads AS h WHERE h.active"
        ).fetchone()


@pytest.mark.parametrize(
    ("point", "committed"),
    [("scores_written", False), ("committed", True)],
)
def test_a_run_killed_while_scoring_leaves_all_or_nothing_and_the_rerun_finishes(
    catalog_home, tmp_path, point: str, committed: bool
):
    uninterrupted = tmp_path / "uninterrupted"
    shutil.copytree(catalog_home.home, uninterrupted, symlinks=True)
    assert materialize_catalog(uninterrupted).success
    expected = catalog_scores(uninterrupted / "catalog.duckdb")
    assert expected.height > 1000
    catalog = catalog_home.catalog

    process = start("score", str(catalog_home.home), point, str(tmp_path / "never"))
    try:
        reach(process, point)
        # While it writes, a reader is kept out and told who has the catalog.
        holder = rf"the catalog {re.escape(str(catalog))} is being written by process {process.pid}"
        with pytest.raises(CatalogBusy, match=holder):
            connect_read_only(catalog, timeout_s=0.3)
    finally:
        kill(process)

    seen = catalog_scores(catalog)
    if committed:
        assert seen.equals(expected)
    else:
        assert seen.height == 0  # not one row of the killed transaction
        assert _cursor(catalog) == (None, 0)  # and the head's cursor did not move

    rerun = materialize_catalog(catalog_home.home)
    assert rerun.success
    assert all(e.passed for e in rerun.get_asset_check_evaluations())
    (done,) = rerun.asset_materializations_for_node("scored_catalog")
    assert done.metadata["scored_this_run"].value == (0 if committed else expected.height)
    assert catalog_scores(catalog).equals(expected)
    assert _cursor(catalog) == _cursor(uninterrupted / "catalog.duckdb")


def _tables(path) -> dict[str, list]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {
            table: con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
            for table in ("scores", "head_shards", "score_reference", "heads")
        }


def test_retention_stopped_half_way_changes_nothing(catalog_home, monkeypatch):
    """Retention deletes from four tables; stopped after some of them (here by an error in
    its last statement, as a kill there would), the catalog keeps every table as it was."""
    assert materialize_catalog(catalog_home.home).success
    heads = registry(catalog_home)
    first = heads.load(heads.active_version())
    second = heads.save(first.net, {**first.card, "seed": 1})
    heads.activate(second.version, "a second head, in a test", by="gate")
    assert materialize_catalog(catalog_home.home).success
    before = _tables(catalog_home.catalog)
    assert set(catalog_scores(catalog_home.catalog)["head_version"]) == {
        first.version,
        second.version,
    }

    text = statements.statement("catalog/retention")
    monkeypatch.setattr(
        statements,
        "statement",
        lambda name: text + "\nSELECT error('stopped');" if name == "catalog/retention" else "",
    )
    with open_catalog(catalog_home.catalog) as con, pytest.raises(duckdb.Error, match="stopped"):
        apply_retention(con, keep=0)
    assert _tables(catalog_home.catalog) == before

    monkeypatch.undo()
    with open_catalog(catalog_home.catalog) as con:
        apply_retention(con, keep=0)
    assert set(catalog_scores(catalog_home.catalog)["head_version"]) == {second.version}
