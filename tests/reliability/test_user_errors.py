"""Every input a user gives gets a clear error: what is wrong, and what to do, with no stack
trace. Through the `scoretag` command (click's runner: an exception that escapes the
command, where a user would see a traceback, is caught and fails the test) and, for a head
made for another backbone, through the scored_catalog asset."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from assets.head.artifact import build_card
from assets.head.models import fit_ridge
from assets.head.paths import registry
from orchestration.backbone import identity
from orchestration.runner import RunOutcome, collect
from orchestration.settings import BackboneSettings, available_profiles
from orchestration.storage import Layout
from scoretag.cli import cli
from tests.reliability.conftest import catalog_scores, materialize_catalog

# The demo's backbone with other random weights: vectors of the same width, no error from
# the shapes, and scores that would mean nothing.
OTHER_BACKBONE = identity(BackboneSettings(model="scoretag-tiny", pretrained="", seed=1))

CONFIGS = {
    "syntax.toml": b"[backbone\nmodel = 1\n",
    "unknown_key.toml": b"[catalog]\nkeep_head = 2\n",
    "wrong_type.toml": b'[catalog]\nlock_timeout_s = "soon"\n',
    "unknown_site.toml": b'[captions]\nsites = ["danboru"]\n',
    "latin1.toml": b'description = "caf\xe9"\n',
}

# (arguments, exit code, what the message must say); {tmp} is the test's folder.
CASES = {
    "unknown site option": (
        ["ingest", "--site", "pixiv", "{tmp}/syntax.toml"],
        2,
        ["'pixiv' is not one of 'auto', 'danbooru', 'e621', 'derpibooru', 'gelbooru'"],
    ),
    "unknown site in the config": (
        ["--config", "{tmp}/unknown_site.toml", "info"],
        1,
        ["captions.sites.0", "unknown site 'danboru': choose among danbooru, e621, derpibooru"],
    ),
    "file of another site": (
        ["ingest", "--site", "e621", "{tmp}/syntax.toml"],
        1,
        ["syntax.toml is not in a format scoretag reads (tried e621_api, e621_csv)"],
    ),
    "missing raw file": (
        ["ingest", "{tmp}/nowhere.json"],
        2,
        ["nowhere.json' does not exist"],
    ),
    "missing config file": (
        ["--config", "{tmp}/nowhere.toml", "info"],
        1,
        ["config file not found: {tmp}/nowhere.toml"],
    ),
    "missing catalog": (
        ["query", "top_posts"],
        1,
        ["no catalog at {tmp}/home/catalog.duckdb: run the pipeline first (`scoretag run`)"],
    ),
    "missing head": (
        ["head", "activate", "0123abc"],
        1,
        ["no head with version '0123abc'"],
    ),
    "unknown profile": (
        ["--profile", "prod", "info"],
        1,
        [f"unknown profile 'prod': choose one of {', '.join(available_profiles())}"],
    ),
    "demo command on the production profile": (
        ["--profile", "production", "demo", "build"],
        1,
        ["has no demo data: use --profile demo"],
    ),
    "TOML syntax error": (
        ["--config", "{tmp}/syntax.toml", "info"],
        1,
        ["{tmp}/syntax.toml is not valid TOML", "line 1"],
    ),
    "unknown key": (
        ["--config", "{tmp}/unknown_key.toml", "info"],
        1,
        ["{tmp}/unknown_key.toml", "catalog.keep_head: Extra inputs are not permitted"],
    ),
    "wrong type": (
        ["--config", "{tmp}/wrong_type.toml", "info"],
        1,
        ["catalog.lock_timeout_s: Input should be a valid number"],
    ),
    "config not UTF-8": (
        ["--config", "{tmp}/latin1.toml", "info"],
        1,
        ["{tmp}/latin1.toml is not valid TOML: it is not UTF-8 text"],
    ),
    "config is a folder": (
        ["--config", "{tmp}", "info"],
        1,
        ["cannot read the config file {tmp}: Is a directory"],
    ),
}


def _scoretag(tmp_path: Path, args: list[str]):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    return CliRunner().invoke(cli, ["--home", str(tmp_path / "home"), *args])


def _assert_clear(result, code: int, fragments: list[str], tmp_path: Path) -> None:
    # SystemExit is how click ends on a usage error or a ClickException; anything else
    # escaped the command, and a user would have seen its traceback.
    assert isinstance(result.exception, SystemExit), result.exc_info
    assert result.exit_code == code, result.output
    output = " ".join(result.output.split())  # rich wraps long lines
    for fragment in fragments:
        assert fragment.replace("{tmp}", str(tmp_path)) in output
    assert "Traceback" not in output


@pytest.mark.parametrize("case", CASES)
def test_each_bad_input_gets_a_clear_error(tmp_path: Path, case: str):
    for name, text in CONFIGS.items():
        (tmp_path / name).write_bytes(text)
    args, code, fragments = CASES[case]
    _assert_clear(_scoretag(tmp_path, args), code, fragments, tmp_path)


def _save_head_for(layout: Layout, backbone: dict) -> str:
    vectors = np.random.default_rng(1).normal(size=(80, OTHER_BACKBONE.embed_dim))
    net = fit_ridge(vectors.astype(np.float32), np.random.default_rng(2).random(80)).net()
    card = build_card(net, backbone=backbone, head_type="ridge", seed=1)
    return registry(layout).save(net, card).version


def test_a_head_made_for_another_backbone_is_not_activated(tmp_path: Path):
    version = _save_head_for(Layout(home=tmp_path / "home"), asdict(OTHER_BACKBONE))
    result = _scoretag(tmp_path, ["head", "activate", version])
    _assert_clear(
        result,
        1,
        [
            f"not activated: head {version} was made for scoretag-tiny / random:seed=1 "
            "embeddings, but the embeddings here are scoretag-tiny / random:seed=0's",
            "`scoretag head list` shows each head's backbone",
        ],
        tmp_path,
    )
    assert registry(Layout(home=tmp_path / "home")).active_version() is None


def test_the_catalog_refuses_to_score_with_a_head_made_for_another_backbone(catalog_home):
    # Activated by hand in the registry (the command would refuse), or left active after
    # [backbone] changed: the embeddings are the new backbone's.
    import dagster as dg

    version = _save_head_for(catalog_home, asdict(OTHER_BACKBONE))
    registry(catalog_home).activate(version, "by hand, in a test")
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize_catalog(catalog_home.home, instance=instance)
        failures = collect(instance, [result.run_id], RunOutcome()).failures
    assert not result.success
    assert len(failures) == 1 and failures[0].startswith("scored_catalog: ")
    assert f"head {version} was made for scoretag-tiny / random:seed=1 embeddings" in failures[0]
    assert catalog_scores(catalog_home.catalog).height == 0  # nothing scored with it
