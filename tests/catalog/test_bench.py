"""`scoretag bench catalog` on a small catalog: the figures it documents, the counts it scored,
and the writer's percentile ranking, which the bench's speed-up moved out of SQL."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

from assets.catalog.writer import percent_rank
from scoretag.benchmarks.catalog import catalog_bench

KEYS = {
    "bench",
    "posts",
    "dim",
    "new_posts",
    "scored_full",
    "scored_incremental",
    "full_seconds",
    "phases",
    "incremental_seconds",
    "incremental_over_full",
    "refresh_seconds",
    "rescore_per_s",
    "matmul_seconds",
    "ratio_to_matmul",
    "floors",
    "peak_rss_mb",
}


@pytest.fixture(scope="module")
def result() -> dict:
    return catalog_bench(posts=20_000, dim=64)


def test_reports_the_documented_figures(result):
    assert set(result) >= KEYS
    assert result["bench"] == "catalog" and (result["posts"], result["dim"]) == (20_000, 64)
    assert set(result["phases"]) == {"unscored", "locate", "read_predict", "write"}
    assert result["full_seconds"] > 0 and result["matmul_seconds"] > 0
    assert result["ratio_to_matmul"] == pytest.approx(
        result["full_seconds"] / result["matmul_seconds"], rel=0.05
    )
    floors = result["floors"]
    assert floors["read_vectors_seconds"] > 0 and floors["insert_seconds"] > 0
    assert floors["floor_over_matmul"] == pytest.approx(
        (floors["read_vectors_seconds"] + floors["insert_seconds"]) / result["matmul_seconds"],
        rel=0.05,
    )


def test_scores_every_post_then_only_the_new_ones(result):
    assert result["scored_full"] == 20_000
    assert result["new_posts"] == result["scored_incremental"] == 200
    assert result["scored_total"] == 20_200


def test_cli_prints_the_bench(tmp_path):
    from scoretag.cli import cli

    out = CliRunner().invoke(
        cli, ["bench", "catalog", "--posts", "3000", "--dim", "32", "--workdir", str(tmp_path)]
    )
    assert out.exit_code == 0, out.output
    assert '"scored_incremental": 30' in out.output


@pytest.mark.parametrize("n", [0, 1, 2, 7, 5_000])
def test_percent_rank_is_duckdbs(n):
    scores = np.round(np.random.default_rng(n).random(n), 2)  # ties
    scores[: n // 10] = np.nan
    con = duckdb.connect()
    con.register("t", pa.table({"i": np.arange(n), "score": scores}))
    query = "SELECT percent_rank() OVER (ORDER BY score) AS p FROM t ORDER BY i"
    expected = np.asarray(con.execute(query).fetchnumpy()["p"], np.float64)
    np.testing.assert_array_equal(percent_rank(scores), expected)
