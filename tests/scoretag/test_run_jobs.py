"""`scoretag run --job NAME` and `--select SELECTION`: the zero-label path from the CLI.

On a small demo data set and no labels: ingest, import a LAION-layout head made for the demo's
tiny backbone, activate it, `scoretag run --job catalog`, and the catalog holds that head's
scores (checked against the head's layers applied in numpy to the stored embeddings), with
caption shards and an export under it."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner

from scoretag.cli import cli

SMALL = "[demo]\nimages = 60\nposts = 200\n"
# linearMSE: Linear layers at these Sequential indices, no activation between them
LINEAR_INDICES = (0, 2, 4, 6, 7)


def _invoke(args: list[str], code: int = 0) -> str:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == code, result.output
    return result.output


def _stored_embeddings(profile) -> tuple[list[str], np.ndarray]:
    """Every stored (image_key, embedding), read from the shards with pyarrow and numpy."""
    from assets.embeddings.assets import store_for
    from orchestration.resources import BackboneResource

    store = store_for(profile.layout, BackboneResource.from_settings(profile.settings.backbone))
    keys, rows = [], []
    for shard in store.shards():
        table = pq.read_table(str(shard), columns=["image_key", "embedding"])
        keys += table["image_key"].to_pylist()
        rows += [np.frombuffer(b, dtype="<f2") for b in table["embedding"].to_pylist()]
    return keys, np.stack(rows).astype(np.float64)


def _laion_layers(dim: int, vectors: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Random linearMSE layers dim -> 16 -> 8 -> 4 -> 2 -> 1, the last bias set so that the
    ratings of these vectors centre on 5.5 (of LAION's 1-10) with a spread of 0.8."""
    rng = np.random.default_rng(7)
    dims = [dim, 16, 8, 4, 2, 1]
    layers = [
        (rng.normal(0, 1 / np.sqrt(a), (b, a)), rng.normal(0, 0.1, b))
        for a, b in zip(dims, dims[1:], strict=False)
    ]
    raw = _forward(layers, vectors)
    w, b = layers[-1]
    gain = 0.8 / max(float(raw.std()), 1e-6)
    layers[-1] = (w * gain, (b - raw.mean()) * gain + 5.5)
    return layers


def _forward(layers, vectors: np.ndarray) -> np.ndarray:
    h = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    for w, b in layers:
        h = h @ w.T + b
    return h[:, 0]


@pytest.fixture(scope="module")
def small_home(tmp_path_factory):
    """A small demo data set, ingested with `scoretag run --job ingest` (no labels)."""
    root = tmp_path_factory.mktemp("run-jobs")
    config = root / "small.toml"
    config.write_text(SMALL)
    home = root / "home"
    base = ["--profile", "demo", "--home", str(home), "--config", str(config)]
    _invoke([*base, "demo", "build", "--workers", "2"])
    for path in (home / "inbox").glob("*/*"):  # the sites' API pages only: a quick data set
        if not path.name.endswith("-p001.json"):
            path.unlink()
    output = _invoke([*base, "run", "--job", "ingest"])
    assert "all succeeded" in output
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        assert {r.dagster_run.job_name for r in instance.get_run_records()} == {"ingest"}
    return root, base


def test_catalog_job_scores_with_an_imported_head_before_any_label(small_home):
    from assets.captions.manifest import read
    from assets.captions.paths import export_dir
    from assets.head.artifact import save_head
    from assets.head.laion import laion_card, read_laion
    from assets.head.paths import registry
    from orchestration.backbone import identity
    from orchestration.profile import load_profile

    root, base = small_home
    profile = load_profile("demo", base[3], base[5])
    keys, vectors = _stored_embeddings(profile)
    assert len(keys) > 20
    layers = _laion_layers(vectors.shape[1], vectors)
    state = {}
    for index, (w, b) in zip(LINEAR_INDICES, layers, strict=True):
        state[f"layers.{index}.weight"] = torch.tensor(w, dtype=torch.float32)
        state[f"layers.{index}.bias"] = torch.tensor(b, dtype=torch.float32)
    checkpoint = root / "laion-tiny.pth"
    torch.save(state, checkpoint)
    # LAION's layout at the tiny backbone's width, its card naming the demo's backbone
    net, layout = read_laion(checkpoint)
    card = laion_card(net, layout, checkpoint)
    card["backbone"] = asdict(identity(profile.settings.backbone))
    # A `laion-*` card naming no activation is read as OpenAI CLIP's QuickGELU space, and the
    # tiny backbone is GELU (which identities name by omission): another head type keeps the
    # card in the tiny backbone's space.
    card["head_type"] = f"imported-{layout}"
    head = save_head(net, card, root / "laion-tiny")
    registry(profile.layout).add(root / "laion-tiny")
    _invoke([*base, "head", "activate", head.version])

    output = _invoke([*base, "run", "--job", "catalog"])
    assert "all succeeded" in output
    assert "no head trained: 0 of [head] min_labels (50)" in output
    assert f"meanwhile the active head {head.version} scores the catalog" in output
    assert "catalog not scored" not in output

    con = duckdb.connect(str(profile.layout.catalog), read_only=True)
    rows = con.execute(
        "SELECT image_key, score FROM scores WHERE head_version = ?", [head.version]
    ).fetchall()
    posts = con.execute("SELECT count(*) FROM posts").fetchone()[0]
    con.close()
    stored = dict(zip(keys, vectors, strict=True))
    expected = np.clip((_forward(layers, vectors) - 1) / 9, 0, 1)
    assert 0 < expected.min() < expected.max() < 1  # no score clipped: a real comparison
    by_key = dict(zip(keys, expected, strict=True))
    assert len(rows) > 20 and posts >= len(rows)
    assert {k for k, _ in rows} <= set(stored)
    got = np.array([s for _, s in rows])
    want = np.array([by_key[k] for k, _ in rows])
    np.testing.assert_allclose(got, want, atol=1e-5)

    manifest = read(export_dir(profile.layout, "parquet"))  # the catalog job's caption_shards
    assert manifest["head_version"] == head.version and manifest["rows"] > 0
    out = root / "export"
    _invoke([*base, "export", "--format", "jsonl", "--out", str(out)])
    exported = json.loads((out / "manifest.json").read_text())
    assert exported["head_version"] == head.version and exported["rows"] == manifest["rows"]
    caption = json.loads(next(out.glob("*.jsonl")).read_text().splitlines()[0])["caption"]
    assert caption.startswith("score_")


def test_select_runs_an_asset_selection_with_its_checks(small_home):
    _, base = small_home
    home = Path(base[3])
    output = _invoke([*base, "run", "--select", "+rating_pool", "--no-ingest"])
    assert "all succeeded" in output
    # raw_posts is made per raw file: by the ingest runs, which --no-ingest skips
    assert "raw_posts: made per raw file, not run (--no-ingest)" in output
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        latest = instance.get_run_records(limit=1)[0].dagster_run
        materialized = {
            event.dagster_event.step_materialization_data.materialization.asset_key
            for event in instance.all_logs(latest.run_id)
            if event.dagster_event is not None and event.dagster_event.is_step_materialization
        }
    assert latest.job_name == "__ASSET_JOB"  # as the UI's "Materialize selected" runs it
    wanted = {dg.AssetKey(k) for k in ("image_index", "normalized_scores", "rating_pool")}
    assert set(latest.asset_selection) == wanted and materialized == wanted
    assert "normalized_scores_suite" in output and "rating_pool_unique" in output


def test_unknown_job_or_selection_lists_what_there_is(small_home):
    _, base = small_home
    output = _invoke([*base, "run", "--job", "score"], code=1)
    assert "no job named 'score'; the jobs are:" in output
    assert "  catalog: The incremental path" in output and "  main: Materialize" in output
    output = _invoke([*base, "run", "--select", "scored_catalogue+"], code=1)
    assert "asset selection 'scored_catalogue+'" in output and "scored_catalog" in output
    output = _invoke([*base, "run", "--job", "catalog", "--select", "x"], code=2)
    assert "--job and --select exclude each other" in output


def test_help_lists_the_jobs_with_what_they_do():
    output = _invoke(["run", "--help"])
    assert "Jobs (--job):" in output
    for job in ("catalog", "embed", "ingest", "labels", "main", "pool", "pool_uncertainty"):
        assert f"\n  {job} " in output, job
