"""Writing the catalog: incremental runs score exactly the new posts; another head rescores
everything from cached embeddings and the old scores stay."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from assets.catalog.writer import (
    apply_retention,
    change_seq,
    counts,
    open_catalog,
    refresh_posts,
    score_missing,
    sync_heads,
)
from assets.embeddings.store import EmbeddingStore
from assets.head.artifact import build_card
from assets.head.models import fit_ridge
from assets.head.registry import Registry
from tests.embeddings.conftest import TINY, unit_vectors

NOW = datetime(2026, 11, 21, tzinfo=UTC)


def _posts(ids: range) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "post_key": [f"e621:{i}" for i in ids],
            "site": "e621",
            "post_id": list(ids),
            "image_key": [f"{i % 150:032x}" for i in ids],  # some posts share an image
            "rating": "s",
            "norm_score": [((i * 37) % 100) / 100 for i in ids],
            "is_canonical": True,
            "tags": [["tag_a", f"tag_{i % 3}"] for i in ids],
            "loaded_at": NOW,
        }
    )


@pytest.fixture
def world(tmp_path):
    store = EmbeddingStore(tmp_path / "embeddings", TINY).ensure()
    vectors = unit_vectors(150)
    store.write_shard("e621/x.csv", [f"{i:032x}" for i in range(150)], vectors)
    heads = Registry(tmp_path / "heads")
    versions = []
    for seed in (0, 1):
        y = np.random.default_rng(seed).random(150)
        net = fit_ridge(vectors.astype(np.float32), y).net()
        card = build_card(net, backbone={"model": TINY.model}, head_type="ridge", seed=seed)
        versions.append(heads.save(net, card).version)
    return tmp_path / "catalog.duckdb", store, heads, versions


def _run(con, posts: pl.DataFrame, heads: Registry, store: EmbeddingStore):
    """A catalog run as the asset does it: posts refreshed, heads mirrored, the active head's
    missing scores filled."""
    refresh_posts(con, posts)
    return score_missing(con, heads.load(sync_heads(con, heads)), store)


def _scores(path) -> pl.DataFrame:
    with open_catalog(path) as con:
        return pl.from_arrow(con.execute("SELECT * FROM scores").arrow())


def test_incremental_runs_score_exactly_the_new_posts(world):
    path, store, heads, (first, _) = world
    heads.activate(first, "test")
    with open_catalog(path) as con:
        done = _run(con, _posts(range(200)), heads, store)
        assert (done.requested, done.scored) == (200, 200)
    before = _scores(path)
    with open_catalog(path) as con:
        again = _run(con, _posts(range(210)), heads, store)  # ten new posts
        assert (again.requested, again.scored) == (10, 10)
        assert counts(con, first)["scored"] == 210
        seq = change_seq(con)
        idle = _run(con, _posts(range(210)), heads, store)  # nothing new: nothing to do
        assert (idle.requested, idle.scored) == (0, 0)
        assert change_seq(con) == seq  # not even a change number: exports see no change
    after = _scores(path)
    new = after.join(before.select("post_key"), on="post_key", how="anti")
    assert sorted(new["post_key"]) == sorted(f"e621:{i}" for i in range(200, 210))
    kept = after.join(before, on=["post_key", "head_version"]).filter(
        pl.col("scored_at") != pl.col("scored_at_right")
    )
    assert kept.height == 0  # earlier rows were not rewritten
    head = heads.load(first)
    expected = head.predict(store.read()[1][:150])
    got = after.filter(pl.col("post_key") == "e621:7")["score"][0]
    assert got == pytest.approx(float(expected[7]), abs=1e-6)
    ranked = after.sort("score")
    assert ranked["percentile"].is_sorted() and ranked["percentile"][0] == 0.0


def test_an_image_stored_twice_is_scored_from_its_first_shard(world):
    """An image embedded again in a later shard (here with another vector) keeps the score of
    its first copy, as the store's lookup() does, and its post is scored once."""
    path, store, heads, (first, _) = world
    heads.activate(first, "test")
    again = [f"{i:032x}" for i in (3, 7)]
    store.write_shard("e621/y.csv", again, unit_vectors(2, seed=9))
    with open_catalog(path) as con:
        done = _run(con, _posts(range(20)), heads, store)
        assert (done.requested, done.scored) == (20, 20)
    scores = _scores(path)
    assert scores["post_key"].is_unique().all()
    expected = heads.load(first).predict(store.read(store.shards("e621/x.csv"))[1])
    for i in (3, 7):
        got = scores.filter(pl.col("post_key") == f"e621:{i}")["score"][0]
        assert got == pytest.approx(float(expected[i]), abs=1e-6)


def test_activating_another_head_rescores_all_and_keeps_the_old(world):
    path, store, heads, (first, second) = world
    heads.activate(first, "test")
    with open_catalog(path) as con:
        _run(con, _posts(range(200)), heads, store)
    heads.activate(second, "test")
    with open_catalog(path) as con:
        active = sync_heads(con, heads)
        assert active == second
        done = score_missing(con, heads.load(second), store)
        assert done.scored == 200
        flags = dict(con.execute("SELECT version, active FROM heads").fetchall())
        assert flags == {first: False, second: True}
        catalog = pl.from_arrow(con.execute("SELECT * FROM catalog").arrow())
    assert set(catalog["head_version"]) == {second}
    scores = _scores(path)
    assert scores.group_by("head_version").len().sort("head_version")["len"].to_list() == [200, 200]
    assert scores.select("post_key", "head_version").is_duplicated().sum() == 0
    with open_catalog(path) as con:
        apply_retention(con, keep=0)
        assert set(_scores_in(con)) == {second}


def _scores_in(con) -> list[str]:
    return [r[0] for r in con.execute("SELECT DISTINCT head_version FROM scores").fetchall()]


def test_posts_without_an_embedding_are_counted_not_scored(world):
    path, store, heads, (first, _) = world
    heads.activate(first, "test")
    posts = _posts(range(5)).with_columns(image_key=pl.lit("f" * 32))
    with open_catalog(path) as con:
        done = _run(con, posts, heads, store)
    assert (done.requested, done.scored, done.without_embedding) == (5, 0, 5)


def test_the_check_aggregates_see_what_is_wrong(world):
    from assets.catalog.statements import statement

    path, store, heads, (first, _) = world
    heads.activate(first, "test")
    shards = str(store.dir / "shards" / "**" / "*.parquet")
    with open_catalog(path) as con:
        _run(con, _posts(range(200)), heads, store)

        def aggregates() -> dict:
            query = statement("catalog/check_aggregates")
            return con.execute(query, {"head": first, "shards": shards}).pl().to_dicts()[0]

        clean = aggregates()
        assert clean["scored"] == 200
        assert all(v == 0 for k, v in clean.items() if k != "scored")
        con.execute("UPDATE scores SET score = 1.5 WHERE post_key = 'e621:3'")
        con.execute("INSERT INTO scores SELECT * FROM scores WHERE post_key = 'e621:4'")
        con.execute("DELETE FROM scores WHERE post_key = 'e621:5'")
        con.execute("UPDATE scores SET percentile = 0 WHERE post_key = 'e621:3'")
        broken = aggregates()
    assert broken["scores_out_of_range"] == 1 and broken["duplicate_scores"] == 1
    assert broken["embedded_posts_unscored"] == 1 and broken["percentile_inversions"] >= 1


def test_retention_keeps_the_heads_activated_last(world):
    path, store, heads, (first, second) = world
    with open_catalog(path) as con:
        for version in (first, second, first):  # the first head is active again, last
            heads.activate(version, "test")
            _run(con, _posts(range(50)), heads, store)
        apply_retention(con, keep=0)
        assert _scores_in(con) == [first]


def _all_scores(con) -> dict[str, float]:
    return dict(con.execute("SELECT post_key, score FROM scores").fetchall())


def test_a_post_waiting_for_its_embedding_is_scored_when_its_shard_arrives(world):
    path, store, heads, (first, _) = world
    heads.activate(first, "test")
    late = _posts(range(1000, 1003)).with_columns(image_key=pl.lit("a" * 32))
    with open_catalog(path) as con:
        assert _run(con, pl.concat([_posts(range(20)), late]), heads, store).without_embedding == 3
        assert _run(con, pl.concat([_posts(range(20)), late]), heads, store).requested == 0
        store.write_shard("e621/late.csv", ["a" * 32], unit_vectors(1))
        again = _run(con, pl.concat([_posts(range(20)), late]), heads, store)
        assert (again.requested, again.scored) == (3, 3)
        assert {f"e621:{i}" for i in range(1000, 1003)} <= set(_all_scores(con))


def test_a_new_post_of_an_image_embedded_long_ago_is_scored(world):
    path, store, heads, (first, _) = world
    heads.activate(first, "test")
    with open_catalog(path) as con:
        _run(con, _posts(range(10)), heads, store)
        store.write_shard("e621/other.csv", ["b" * 32], unit_vectors(1))
        _run(con, _posts(range(10)), heads, store)  # the new shard is read: no post wants it
        # a new post whose image sits in a shard the head read before (no new shard holds it)
        again = _run(con, _posts(range(11)), heads, store)
        assert (again.requested, again.scored) == (1, 1)
        want = heads.load(first).predict(store.lookup(pl.Series([f"{10:032x}"]))[1])[0]
        assert _all_scores(con)["e621:10"] == pytest.approx(float(want), abs=1e-6)


def test_a_changed_image_is_scored_again_and_a_vanished_post_loses_its_score(world):
    path, store, heads, (first, _) = world
    heads.activate(first, "test")
    with open_catalog(path) as con:
        _run(con, _posts(range(10)), heads, store)
        before = _all_scores(con)
        changed = _posts(range(1, 10)).with_columns(
            image_key=pl.when(pl.col("post_id") == 3)
            .then(pl.lit(f"{120:032x}"))
            .otherwise(pl.col("image_key"))
        )
        again = _run(con, changed, heads, store)
        assert (again.requested, again.scored) == (1, 1)
        after = _all_scores(con)
        rows = con.execute("SELECT image_key FROM scores WHERE post_key = 'e621:3'").fetchall()
    assert "e621:0" not in after and len(after) == 9
    assert rows == [(f"{120:032x}",)] and after["e621:3"] != before["e621:3"]
    assert all(after[k] == before[k] for k in after if k != "e621:3")


def test_daily_runs_keep_percentiles_and_a_large_change_ranks_all_again(world):
    path, store, heads, (first, _) = world
    heads.activate(first, "test")
    with open_catalog(path) as con:
        first_run = score_missing_for(con, heads, store, range(100), growth=0.1)
        assert first_run.reranked
        before = _percentiles(con)
        daily = score_missing_for(con, heads, store, range(105), growth=0.1)
        assert not daily.reranked
        after = _percentiles(con)
        assert all(after[k] == v for k, v in before.items())  # nothing earlier moved
        _assert_ranked_in_order(con)
        big = score_missing_for(con, heads, store, range(130), growth=0.1)
        assert big.reranked
        _assert_ranked_in_order(con)
        exact = con.execute(
            "SELECT percentile, percent_rank() OVER (ORDER BY score) FROM scores"
        ).fetchall()
    assert all(a == pytest.approx(b) for a, b in exact)


def score_missing_for(con, heads, store, ids, growth):
    refresh_posts(con, _posts(ids))
    return score_missing(con, heads.load(sync_heads(con, heads)), store, growth)


def _percentiles(con) -> dict[str, float]:
    return dict(con.execute("SELECT post_key, percentile FROM scores").fetchall())


def _assert_ranked_in_order(con) -> None:
    ranked = pl.from_arrow(con.execute("SELECT score, percentile FROM scores").arrow())
    ranked = ranked.sort("score", "percentile")
    assert ranked["percentile"].is_sorted()
    assert ranked["percentile"].min() >= 0 and ranked["percentile"].max() <= 1


def test_a_head_whose_scores_retention_dropped_is_scored_from_scratch(world):
    path, store, heads, (first, second) = world
    with open_catalog(path) as con:
        heads.activate(first, "test")
        _run(con, _posts(range(30)), heads, store)
        heads.activate(second, "test")
        _run(con, _posts(range(30)), heads, store)
        apply_retention(con, keep=0)
        heads.activate(first, "test")
        again = _run(con, _posts(range(30)), heads, store)
    assert (again.requested, again.scored) == (30, 30)


@pytest.mark.parametrize("n", [1, 2, 50])
def test_ranking_against_the_reference_agrees_with_percent_rank(n):
    from assets.catalog.writer import percent_rank, rank_against

    reference = np.round(np.random.default_rng(n).random(n), 2)  # ties included
    np.testing.assert_allclose(rank_against(np.sort(reference), reference), percent_rank(reference))
    between = rank_against(np.sort(reference), np.array([-1.0, 0.505, 2.0]))
    assert between[0] == 0.0 and between[-1] == (1.0 if n > 1 else 0.0)
    assert (np.diff(between) >= 0).all()


def test_the_gate_check_tells_a_gated_head_from_one_activated_by_hand(world):
    from assets.catalog.checks import gate_verdict

    _, _, heads, (first, second) = world
    heads.activate(first, "passed the gate: 0.41", by="gate")
    heads.activate(second, "activated by hand")
    gated, by_hand = heads.history()
    assert gate_verdict(gated) == (True, f"head {first} passed the gate: 0.41")
    assert gate_verdict(by_hand)[0] is False and "by hand" in gate_verdict(by_hand)[1]
    assert gate_verdict({"version": "x", "reason": "?"})[0] is False


def test_the_writer_holds_duckdb_to_the_memory_setting(tmp_path):
    from orchestration.settings import CatalogSettings

    with open_catalog(tmp_path / "catalog.duckdb", memory_mb=300) as con:
        limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert limit in {"300.0 MB", "286.1 MiB"}, limit  # DuckDB prints it in either unit
    assert CatalogSettings().memory_mb == 2048
