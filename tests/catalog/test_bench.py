"""`scoretag bench catalog` on a small catalog: the figures it documents, checked against the
catalog it scored (read back here with numpy) and against a clock the test sets; and the writer's
percentile ranking, which the bench's speed-up moved out of SQL."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from types import SimpleNamespace

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from safetensors.numpy import load_file

import scoretag.benchmarks.catalog as bench
from assets.catalog.writer import percent_rank
from orchestration.settings import EmbedSettings
from scoretag.benchmarks.catalog import catalog_bench

POSTS, DIM, NEW = 20_000, 64, 200  # NEW: the bench's 1% of new posts
KEYS = {
    "bench",
    "posts",
    "dim",
    "new_posts",
    "scored_full",
    "scored_incremental",
    "scored_total",
    "shard_rows",
    "full_seconds",
    "full_phases",
    "phases",
    "incremental_seconds",
    "incremental_phases",
    "incremental_score_phases",
    "incremental_over_full",
    "rescore_per_s",
    "matmul_seconds",
    "matmul_runs_s",
    "ratio_to_matmul",
    "floors",
    "peak_rss_mb",
}


def _keep_workdir(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """The bench works in `path` and leaves it there, for the test to read what it wrote."""
    keep = SimpleNamespace(TemporaryDirectory=lambda **_: contextlib.nullcontext(str(path)))
    monkeypatch.setattr(bench, "tempfile", keep)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[dict, Path]:
    workdir = tmp_path_factory.mktemp("bench-catalog")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _keep_workdir(monkeypatch, workdir)
        return catalog_bench(posts=POSTS, dim=DIM), workdir


def _embeddings(root: Path) -> dict[str, np.ndarray]:
    """Every stored vector by image key, read from the shards' parquet directly."""
    table = pa.concat_tables(pq.read_table(p) for p in sorted(root.rglob("part-*.parquet")))
    raw = b"".join(table["embedding"].to_pylist())
    vectors = np.frombuffer(raw, np.float16).reshape(len(table), DIM)
    return dict(zip(table["image_key"].to_pylist(), vectors, strict=True))


def test_reports_the_documented_figures(run):
    result, _ = run
    assert set(result) >= KEYS
    assert result["bench"] == "catalog" and (result["posts"], result["dim"]) == (POSTS, DIM)
    assert set(result["phases"]) == {"unscored", "locate", "read_predict", "write"}
    assert set(result["incremental_score_phases"]) == set(result["phases"])
    run = {"refresh", "heads", "score", "summary", "checkpoint"}
    assert set(result["full_phases"]) == set(result["incremental_phases"]) == run
    # The embeddings stage's own shard size, not a number of the bench's.
    assert result["shard_rows"] == EmbedSettings().shard_size == 8192
    assert set(result["floors"]) == {"read_vectors_seconds", "insert_seconds", "floor_over_matmul"}
    json.dumps(result)


def test_scores_every_post_then_only_the_new_ones(run):
    result, workdir = run
    assert result["scored_full"] == POSTS
    assert result["new_posts"] == result["scored_incremental"] == NEW
    assert result["scored_total"] == POSTS + NEW
    # The catalog it left holds one score per post, all under the one head it activated.
    with duckdb.connect(str(workdir / "catalog.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT count(*), count(DISTINCT post_key), list(DISTINCT head_version) FROM scores"
        ).fetchone()
        active = con.execute("SELECT version FROM heads WHERE active").fetchall()
        # The second run wrote the new posts alone, as a daily run applies a change file.
        written = con.execute(
            "SELECT changed_seq, count(*) FROM posts GROUP BY ALL ORDER BY 1"
        ).fetchall()
    assert rows == (POSTS + NEW, POSTS + NEW, [active[0][0]])
    assert [n for _, n in written] == [POSTS, NEW]


def test_the_scores_are_the_heads_product_over_the_stored_vectors(run):
    _, workdir = run
    [head_dir] = [p for p in (workdir / "heads" / "heads").iterdir() if not p.name.startswith(".")]
    # A ridge head's raw weights: score = clip(x / |x| . w + b, 0, 1), in float64 here.
    card = json.loads((head_dir / "card.json").read_text())
    arch = card["architecture"]
    assert (arch["dims"], arch["activations"], arch["scale"], arch["shift"]) == (
        [DIM, 1],
        ["none"],
        1.0,
        0.0,
    )
    weights = load_file(head_dir / "weights.safetensors")
    w = weights["linears.0.weight"].astype(np.float64).reshape(-1)
    b = float(weights["linears.0.bias"][0])
    with duckdb.connect(str(workdir / "catalog.duckdb"), read_only=True) as con:
        query = "SELECT p.image_key, s.score FROM scores s JOIN posts p USING (post_key)"
        keys, scores = zip(*con.execute(query).fetchall(), strict=True)
    vectors = _embeddings(workdir / "embeddings")
    X = np.stack([vectors[k] for k in keys]).astype(np.float64)
    expected = np.clip(X / np.linalg.norm(X, axis=1, keepdims=True) @ w + b, 0.0, 1.0)
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    # Most scores are inside (0, 1), not clipped: the product itself is what was compared.
    assert ((expected > 0) & (expected < 1)).mean() > 0.5


def test_the_timings_hang_together(run):
    result, _ = run
    floors = result["floors"]
    timings = [result["full_seconds"], result["incremental_seconds"]]
    timings += [result["matmul_seconds"], floors["read_vectors_seconds"], floors["insert_seconds"]]
    assert all(t > 0 for t in timings + result["matmul_runs_s"])
    parts = [*result["full_phases"].values(), *result["incremental_phases"].values()]
    assert all(t >= 0 for t in parts)  # a small part may round to 0 ms
    # A run is its parts (each rounded to a millisecond), score_missing's laps are within its
    # part: whole runs are compared, refresh and checkpoint included.
    for run, score_laps in (("full", "phases"), ("incremental", "incremental_score_phases")):
        parts = result[f"{run}_phases"]
        assert sum(parts.values()) == pytest.approx(result[f"{run}_seconds"], abs=0.003)
        assert sum(result[score_laps].values()) <= parts["score"] + 0.003
    # Of the unrounded seconds: the rounded ones agree to their rounding (0.1 ms each).
    ratio = result["incremental_seconds"] / result["full_seconds"]
    assert result["incremental_over_full"] == pytest.approx(ratio, rel=1e-3, abs=1e-4)
    # The median of three runs of a bare product, cheaper than the full run that holds one.
    assert result["matmul_seconds"] == sorted(result["matmul_runs_s"])[1]
    assert result["matmul_seconds"] < result["full_seconds"]


def test_ratios_divide_the_timings_they_name(tmp_path, monkeypatch):
    """The figures on a clock the test moves: each scoring run takes as long as the test says,
    and the bare product and the floors are timed at values the test chose."""
    from assets.catalog import writer

    now = [0.0]
    # Seconds each part takes: the full run, then the incremental one.
    laps = {
        "refresh_posts": iter([3.0]),
        "apply_post_changes": iter([0.5]),
        "score_missing": iter([8.0, 0.2]),
    }

    def timed(name: str):
        step = getattr(writer, name)

        def run(*args, **kwargs):
            done = step(*args, **kwargs)
            now[0] += next(laps[name])
            return done

        return run

    _keep_workdir(monkeypatch, tmp_path)
    monkeypatch.setattr(bench, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    for name in laps:
        monkeypatch.setattr(writer, name, timed(name))
    monkeypatch.setattr(bench, "_matmul_seconds", lambda store, head: (2.0, [1.0, 2.0, 3.0]))
    monkeypatch.setattr(bench, "_read_vectors_seconds", lambda store: 1.0)
    monkeypatch.setattr(bench, "_insert_seconds", lambda root, keys, seed: 3.0)
    result = catalog_bench(posts=1_000, dim=16)
    assert (result["full_seconds"], result["incremental_seconds"]) == (11.0, 0.7)
    assert result["full_phases"]["refresh"] == 3.0 and result["full_phases"]["score"] == 8.0
    assert result["incremental_over_full"] == 0.0636  # whole runs: 0.7 s against 11 s
    assert result["rescore_per_s"] == 125.0  # 1,000 posts scored in 8 s
    assert result["matmul_seconds"] == 2.0
    assert result["ratio_to_matmul"] == 4.0  # the full scoring's 8 s against 2 s
    assert result["floors"] == {
        "read_vectors_seconds": 1.0,
        "insert_seconds": 3.0,
        "floor_over_matmul": 2.0,  # (1 s + 3 s) against 2 s
    }


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
