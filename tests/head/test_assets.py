"""aesthetic_head as Dagster runs it: trained from labels and stored embeddings, activated
through the gate, and kept out when a worse head is trained."""

from __future__ import annotations

import shutil

import dagster as dg
import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from assets.embeddings.store import EmbeddingStore
from assets.head.assets import aesthetic_head
from assets.head.checks import aesthetic_head_quality_gate
from assets.head.paths import registry
from assets.head.planted import planted
from assets.labels.paths import labels_path
from assets.labels.resolve import LABELS
from assets.pool.paths import pool_path
from orchestration.backbone import identity
from orchestration.profile import load_profile
from orchestration.resources import BackboneResource, ScoretagResource
from orchestration.storage import Layout
from scoretag.cli import cli

STRICT = "[head]\nhead_type = 'ridge'\nmin_spearman = 0.3\nridge_margin = 0.05\n"


def _home(tmp_path, labels: np.ndarray, X: np.ndarray) -> Layout:
    """A storage root with manual_labels, the pool's ratings and the embeddings."""
    layout = Layout(home=tmp_path / "home").ensure()
    n = len(labels)
    keys = [f"{i:032x}" for i in range(n)]
    posts = [f"danbooru:{i}" for i in range(n)]
    frame = pl.DataFrame(
        {
            "post_key": posts,
            "site": ["danbooru", "e621"] * (n // 2) + ["danbooru"] * (n % 2),
            "post_id": list(range(n)),
            "image_key": keys,
            "target": labels.astype(float),
            "labelers": [1] * n,
            "labels": [[int(v)] for v in labels],
            "labeler_names": [["simulated-test"]] * n,
            "in_pool": [True] * n,
        },
        schema=LABELS,
    )
    labels_path(layout).parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(labels_path(layout))
    pool_path(layout).parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(
        {"post_key": posts, "rating": ["g", "s", "q", "e"] * (n // 4) + ["g"] * (n % 4)}
    ).write_parquet(pool_path(layout))
    store = EmbeddingStore(layout.stage_dir("embeddings"), _tiny())
    store.ensure().write_shard("danbooru/labels.json", keys[:-5], X[:-5].astype(np.float16))
    return layout


def _tiny():
    return identity(load_profile("demo").settings.backbone)


def _materialize(layout: Layout, config) -> dg.ExecuteInProcessResult:
    profile = load_profile("demo", layout.home, config)
    return dg.materialize(
        [aesthetic_head, aesthetic_head_quality_gate],
        resources={
            "scoretag": ScoretagResource.for_profile(profile, str(config)),
            "backbone": BackboneResource.from_settings(profile.settings.backbone),
        },
        raise_on_error=False,
    )


@pytest.fixture(scope="module")
def signal():
    p = planted(n=900, dim=64, clusters=6, test=100, seed=1)
    return p.X, p.labels


def test_a_good_head_is_activated_and_a_worse_one_is_kept_out(tmp_path, signal):
    config = tmp_path / "strict.toml"
    config.write_text(STRICT)
    X, labels = signal
    layout = _home(tmp_path, labels, X)
    result = _materialize(layout, config)
    assert result.success
    (mat,) = result.asset_materializations_for_node("aesthetic_head")
    meta = {k: v.value for k, v in mat.metadata.items()}
    assert meta["gate_passed"] and meta["cv_spearman"] > 0.5
    assert meta["labels"] == 900 and meta["labels_without_embedding"] == 5
    assert meta["labels_used"] == 895
    assert "constant" in meta["metrics"] and "calibration" in meta
    heads = registry(layout)
    good = meta["version"]
    assert heads.active_version() == good
    card = heads.load(good).card
    assert card["labels"]["count"] == 895 and card["backbone"]["embed_dim"] == 64
    assert card["metrics"]["cv"]["head"]["overall"]["spearman"] == meta["cv_spearman"]
    assert [r["label"] for r in card["metrics"]["calibration"]["head"]] == [1, 2, 3, 4, 5]
    assert set(card["metrics"]["cv"]["head"]["by_rating"]) == {"g", "s", "q", "e"}
    listed = CliRunner().invoke(cli, ["--home", str(layout.home), "head", "list"])
    assert listed.exit_code == 0, listed.output
    assert f"* active: {good}" in listed.output
    assert f"{meta['cv_spearman']:.3f}" in listed.output

    # The same labels, shuffled: a worse head, which the gate keeps out.
    rng = np.random.default_rng(0)
    worse = _home(tmp_path / "again", rng.permutation(labels), X)
    worse_heads = registry(worse)
    worse_heads.heads_dir.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(heads.dir, worse_heads.dir, dirs_exist_ok=True)
    result = _materialize(worse, config)
    assert not result.success  # the blocking check fails the run
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert "below the minimum 0.300" in evaluation.description
    assert f"the active head stays {good}" in evaluation.description
    assert worse_heads.active_version() == good
    assert len(worse_heads.cards()) == 2  # the worse head is kept, only not active


def test_too_few_labels_is_a_clear_failure(tmp_path, signal):
    X, labels = signal
    layout = _home(tmp_path, labels[:30], X[:30])
    config = tmp_path / "strict.toml"
    config.write_text(STRICT)
    result = _materialize(layout, config)
    assert not result.success
    failure = result.get_step_failure_events()[0]
    assert "a head needs at least 50" in failure.step_failure_data.error.message
