"""Score buckets: policies, boundaries, and the same bucket in Python and in the SQL that
reads the stored cut-points."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import numpy as np
import pytest

from assets.captions.buckets import Calibration, bucket_of, shares, starts_for, starts_from_rows
from assets.catalog.statements import schema, statement
from orchestration.settings import DECILE_CUT_POINTS

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_absolute_buckets_at_their_boundaries():
    starts = starts_for("absolute", DECILE_CUT_POINTS, np.array([]))
    scores = np.array([0.0, 0.1, 0.1999, 0.2, 0.35, 0.8999, 0.9, 0.95, 1.0])
    assert bucket_of(scores, starts).tolist() == [1, 1, 1, 2, 3, 8, 9, 9, 9]
    # exactly on a cut-point: the bucket that starts there
    for bucket, start in enumerate(DECILE_CUT_POINTS, start=2):
        assert bucket_of(np.array([start]), starts)[0] == bucket
        assert bucket_of(np.array([np.nextafter(start, 0)]), starts)[0] == bucket - 1


def test_quantile_deciles_put_a_tenth_in_each_top_bucket():
    scores = np.random.default_rng(0).beta(2, 5, 100_000)
    starts = starts_for("quantile", DECILE_CUT_POINTS, scores)
    got = shares(bucket_of(scores, starts))
    assert got[0] == pytest.approx(0.2, abs=1e-3)  # score_1: the bottom fifth
    assert got[1:] == pytest.approx([0.1] * 8, abs=1e-3)


def test_quantile_cut_points_given_as_percentiles():
    scores = np.linspace(0, 1, 1001)
    points = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)
    starts = starts_for("quantile", points, scores)
    assert starts == pytest.approx(points)
    assert shares(bucket_of(scores, starts))[8] == pytest.approx(0.011, abs=1e-3)


def test_tied_quantiles_still_rise_and_the_ties_share_a_bucket():
    scores = np.array([0.5] * 90 + [0.7] * 10)
    starts = starts_for("quantile", DECILE_CUT_POINTS, scores)
    assert np.all(np.diff(starts) > 0)
    assert set(bucket_of(np.array([0.5]), starts)) == {2}


@pytest.mark.parametrize(
    ("policy", "points", "scores", "message"),
    [
        ("median", DECILE_CUT_POINTS, [0.5], "unknown bucket policy 'median'"),
        ("absolute", (0.2, 0.3), [0.5], "8 rising values"),
        ("absolute", (0.9, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85), [0.5], "8 rising values"),
        ("quantile", DECILE_CUT_POINTS, [], "no scored image in the calibration scope"),
    ],
)
def test_bad_calibrations_are_clear_errors(policy, points, scores, message):
    with pytest.raises(ValueError, match=message):
        starts_for(policy, points, np.array(scores))


def test_rows_round_trip():
    calibration = Calibration("h", tuple(DECILE_CUT_POINTS), T0)
    rows = calibration.rows()
    assert rows["bucket"].to_list() == list(range(1, 10))
    assert rows["max_score"].to_list()[:-1] == rows["min_score"].to_list()[1:]
    assert starts_from_rows(rows) == DECILE_CUT_POINTS
    with pytest.raises(ValueError, match="a row for each bucket"):
        starts_from_rows(rows.head(5))


@pytest.mark.parametrize("seed", [0, 1])
def test_python_and_sql_agree_on_every_bucket(seed: int):
    """The stored rows read by sql/captions/macros.sql and sql/queries/bucket_distribution.sql
    give each score the bucket bucket_of() gives, boundaries included."""
    rng = np.random.default_rng(seed)
    scores = np.concatenate([rng.random(500), DECILE_CUT_POINTS, [0.0, 1.0]])
    starts = (
        starts_for("quantile", DECILE_CUT_POINTS, scores) if seed else np.array(DECILE_CUT_POINTS)
    )
    scores = np.concatenate([scores, starts, np.nextafter(starts, 0)])
    con = duckdb.connect()
    for text in schema():
        con.execute(text)
    keys = [f"s:{i}" for i in range(len(scores))]
    con.executemany(
        "INSERT INTO posts (post_key, site, post_id, image_key, rating) VALUES (?, 's', ?, ?, 'g')",
        [(k, i, k) for i, k in enumerate(keys)],
    )
    con.execute("INSERT INTO heads (version, active) VALUES ('h', true)")
    con.executemany(
        "INSERT INTO scores (post_key, image_key, head_version, score, percentile, scored_at) "
        "VALUES (?, ?, 'h', ?, 0.5, ?)",
        [(k, k, float(s), T0) for k, s in zip(keys, scores, strict=True)],
    )
    con.register("new_calibration", Calibration("h", tuple(starts), T0).rows().to_arrow())
    con.execute(statement("captions/insert_calibration"), {"head": "h", "created_at": T0})
    con.execute(statement("captions/macros"))
    got = con.execute(
        "SELECT post_key, bucket FROM caption_bucketed('h') ORDER BY post_id"
    ).fetchall()
    expected = bucket_of(scores, starts)
    assert [b for _, b in got] == expected.tolist()
    from assets.catalog.queries import load_queries

    by_query = con.execute(load_queries()["bucket_distribution"].sql).pl()
    counts = np.bincount(expected, minlength=10)[1:]
    assert [by_query[f"score_{b}"].sum() for b in range(1, 10)] == counts.tolist()
