"""One set evaluated end to end with the demo's tiny backbone: embedded once, scored from
the cache under any head afterwards, every image scored or listed as failed."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from assets.captions.buckets import Calibration
from assets.embeddings.embed import Plan
from assets.evaluation import evaluate as ev
from assets.evaluation.cache import missing_images
from assets.evaluation.report import Options, compare_sets
from assets.head.registry import Registry
from tests.evaluation.conftest import PROMPTS, SEEDS, TINY, head_for, write_set

PLAN = Plan(batch_size=8, workers=0, shard_size=16)


def never():
    raise AssertionError("the backbone was loaded: something was not in the cache")


def run(name, root, caches, backbone, heads, calibrations=None):
    loader = (lambda: backbone) if backbone is not None else never
    return ev.evaluate_set(name, root, caches, loader, PLAN, heads, calibrations or {}, 7)


def test_a_set_is_embedded_once_and_rescored_from_the_cache(tmp_path, caches, tiny_backbone):
    heads = Registry(tmp_path / "heads")
    first, second = head_for(heads, TINY, 0), head_for(heads, TINY, 1)
    root = write_set(tmp_path / "set", broken=True)
    (root / "again.png").write_bytes((root / "prompt-0" / "seed-1.png").read_bytes())

    done = run("a", root, caches, tiny_backbone, [first])
    images = len(PROMPTS) * len(SEEDS)
    assert done.found == images + 2 and done.images.height == images + 1
    assert done.embedded == images  # the copy is the same content: embedded once
    assert done.failures.select("source", "reason").rows() == [("cut.png", "truncated")]
    assert done.images["clip_score"].null_count() == 1  # again.png has no prompt
    assert done.images.filter(pl.col("source") != "again.png")["clip_score"].min() >= 0

    # Under another head nothing is embedded: the backbone is not even loaded.
    again = run("a", root, caches, None, [second, first])
    assert again.embedded == 0 and again.cached == images
    assert again.images.equals(done.images)
    assert np.allclose(
        again.scores[first.version].rows["score"], done.scores[first.version].rows["score"]
    )
    assert not np.allclose(
        again.scores[second.version].rows["score"], done.scores[first.version].rows["score"]
    )
    expected = second.predict(again.scores[second.version].vectors)
    assert np.allclose(again.scores[second.version].rows["score"], expected, atol=1e-6)
    assert missing_images(ev.find_set(root)[0], caches.images).height == 0


def test_another_set_reuses_the_vectors_of_pictures_it_shares(tmp_path, caches, tiny_backbone):
    heads = Registry(tmp_path / "heads")
    head = head_for(heads, TINY, 0)
    run("a", write_set(tmp_path / "a"), caches, tiny_backbone, [head])
    b = write_set(tmp_path / "b", blur=2.0)
    (b / "prompt-0" / "seed-1.png").write_bytes((tmp_path / "a/prompt-0/seed-1.png").read_bytes())
    done = run("b", b, caches, tiny_backbone, [head])
    assert done.cached == 1 and done.embedded == len(PROMPTS) * len(SEEDS) - 1
    assert done.prompts_embedded == 0  # the same prompts: their vectors are cached too


def test_buckets_follow_the_frozen_cut_points(tmp_path, caches, tiny_backbone):
    heads = Registry(tmp_path / "heads")
    head = head_for(heads, TINY, 0)
    root = write_set(tmp_path / "set")
    plain = run("a", root, caches, tiny_backbone, [head])
    scores = plain.scores[head.version].rows["score"].to_numpy()
    assert plain.scores[head.version].rows["bucket"].null_count() == scores.size
    assert plain.summaries[head.version]["good_rate"] is None

    starts = tuple(np.quantile(scores, np.linspace(0.1, 0.9, 8)))
    calibration = Calibration(head.version, starts, created_at=None)
    done = run("a", root, caches, None, [head], {head.version: calibration})
    buckets = done.scores[head.version].rows["bucket"].to_numpy()
    assert np.array_equal(buckets, np.searchsorted(starts, scores, side="right") + 1)
    assert done.summaries[head.version]["good_rate"] == pytest.approx(
        (buckets >= 7).mean(), abs=1e-4
    )


def test_results_are_written_and_sets_compare_as_pairs(tmp_path, caches, tiny_backbone):
    heads = Registry(tmp_path / "heads")
    head = head_for(heads, TINY, 0)
    a = run("a", write_set(tmp_path / "a"), caches, tiny_backbone, [head])
    b = run("b", write_set(tmp_path / "b", blur=3.0), caches, tiny_backbone, [head])
    ev.write(a, tmp_path / "out" / "a", {"note": 1})
    summary = json.loads((tmp_path / "out" / "a" / "summary.json").read_text())
    assert summary["scored"] == a.images.height and summary["note"] == 1
    scores = pl.read_parquet(tmp_path / "out" / "a" / "scores.parquet")
    assert scores.height == a.images.height and set(scores["head"]) == {head.version}

    comparison = compare_sets(
        [a.scores[head.version], b.scores[head.version]], Options(resamples=300)
    )
    rows = {r["metric"]: r for r in comparison.differences.to_dicts()}
    assert rows["score_mean"]["paired"] and rows["score_mean"]["n_pairs"] == len(PROMPTS) * len(
        SEEDS
    )
    mean_a = a.scores[head.version].rows["score"].mean()
    mean_b = b.scores[head.version].rows["score"].mean()
    assert rows["score_mean"]["difference"] == pytest.approx(mean_b - mean_a)
    assert (
        rows["score_mean"]["low"] <= rows["score_mean"]["difference"] <= rows["score_mean"]["high"]
    )
    assert [r["figure"] for r in comparison.table()][:2] == ["images", "score_mean"]
