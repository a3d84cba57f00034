"""The product end to end, on a fresh storage root and DAGSTER_HOME: `scoretag demo run` as
`make demo` runs it, then the same storage root in the Dagster UI.

The UI test: `scoretag ui` starts `dagster dev` headless. The test waits for /server_info and
for the code location to load, opens /asset-groups in Debian's Chromium (Playwright), checks
that the eight assets and every asset check are shown, launches a materialization of the whole
graph through the GraphQL API (the per-raw-file job for one file, then `main`: every asset and
check, as `scoretag run` does), waits for it to succeed, and saves screenshots of the graph
under test-artifacts/.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from click.testing import CliRunner

from assets.captions.manifest import read
from assets.captions.paths import export_dir
from assets.head.paths import registry
from assets.labels.paths import labels_path, pairs_path
from assets.labels.store import LabelStore
from assets.normalize.assets import read_scores
from assets.pool.paths import pool_path
from orchestration.jobs import EVALUATE_JOB, INGEST_JOB, MAIN_JOB
from orchestration.storage import Layout
from scoretag.cli import cli
from scoretag.demo.labeler import PANEL
from scoretag.demo.labeling import PAIRS, free_port
from tests.conftest import ARTIFACTS

RAW_FILES = 19  # every demo file but e621's tag table, which is read beside its export


def _jobs(home: Path, among: Collection[str] | None = None) -> list[str]:
    """The jobs of the runs on `home`'s instance (only runs `among` these ids, if given)."""
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        records = instance.get_run_records()
        assert all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in records)
        return sorted(
            r.dagster_run.job_name
            for r in records
            if among is None or r.dagster_run.run_id in among
        )


def _run_ids(home: Path) -> set[str]:
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        return {r.dagster_run.run_id for r in instance.get_run_records()}


@dataclass(frozen=True)
class DemoRun:
    """`scoretag demo run` on a fresh storage root: where, what it printed, the runs it made."""

    home: Path
    output: str
    run_ids: frozenset[str]


def demo_run_once(home: Path) -> str:
    result = CliRunner().invoke(cli, ["--profile", "demo", "--home", str(home), "demo", "run"])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> DemoRun:
    """The demo, run once for the module: the CLI's and the UI's tests both start from it
    (the slowest thing the suite builds), and may run more on it. `make test` distributes
    tests by file (pytest-xdist --dist loadfile), so they share one worker and one run."""
    home = tmp_path_factory.mktemp("demo-run") / "home"
    output = demo_run_once(home)
    return DemoRun(home, output, frozenset(_run_ids(home)))


def test_demo_run_ingests_normalizes_checks_and_summarizes(demo_run: DemoRun):
    root, output = demo_run.home, demo_run.output
    for expected in (
        "Demo data (seed 0",
        "danbooru_dump",
        "600 images",
        "all succeeded",
        "raw_posts (every ingested file)",
        "normalized_scores: norm_score deciles",
        "raw_posts_schema",
        "norm_score_uniform",
        "randomly initialised (untrained)",
        "embeddings: 592 images in",  # 600 demo images, 8 of them unusable:
        "truncated 3",
        "too_large 3",
        "aesthetic_head",  # the head's metrics, the baselines beside them, the gate
        "constant",
        "ridge",
        "gate passed",
        "these metrics measure no quality signal",
        "posts per score bucket",  # the catalog's buckets and a named query
        "scoretag query top_posts",
        "scores from a head on an untrained backbone: no quality signal",
        "caption_shards (parquet)",  # the export and three of its captions, with a warning
        "three captions in the v6 style, best bucket first:\n  score_9, score_8_up, score_7_up",
        "caption_shards (parquet-animagine)",  # the same posts in Animagine's vocabulary
        "three captions in the animagine style, best bucket first:",
        "tags drawn from the head's scores mean nothing yet",
        "make ui",
        str(root / "inbox"),
        # the two evaluation sets, compared, the broken file listed, the warning given
        "demo-degraded - demo-clean",
        "truncated   unfinished.png",
        "these scores carry no meaning",
    ):
        assert expected in output, expected
    # One ingest run per raw file, the images job (fetch when on, refresh the image index)
    # after them, the pool draw, main, and one evaluate run per evaluation set.
    jobs = _jobs(root, demo_run.run_ids)
    assert jobs == ["evaluate"] * 2 + ["images"] + ["ingest"] * RAW_FILES + ["main", "pool"]
    scores = read_scores(Layout(home=root))
    truth = pl.read_parquet(root / "demo" / "posts.parquet")
    assert scores.height == truth.filter(~pl.col("superseded")).height
    assert set(scores["site"]) == {"danbooru", "e621", "derpibooru", "gelbooru"}

    with LabelStore(root / "labels.sqlite", read_only=True) as store:
        events = store.events()
        pair_events = store.pair_events()
    assert set(events["labeler"]) == {"simulated-steady", "simulated-harsh", "simulated-lenient"}
    labels = pl.read_parquet(labels_path(Layout(home=root)))
    assert labels.height == 420 - events.filter(pl.col("kind") == "skip")["post_key"].n_unique()
    # ... and each compared its number of pairs (choices and skips), which manual_labels wrote
    judged = dict(pair_events.group_by("labeler").len().iter_rows())
    assert judged == {labeler.name: n for labeler, n in zip(PANEL, PAIRS, strict=True)}
    assert pl.read_parquet(pairs_path(Layout(home=root))).height > 0

    heads = registry(Layout(home=root))
    first_head = heads.active_version()
    assert first_head is not None and len(heads.cards()) == 1
    # the head trains on the ratings and reports its accuracy on held-out pairs
    held_out = heads.load(first_head).card["pairs"]
    assert held_out["held_out"] > 0 and "pair_accuracy" in held_out["accuracy"]["head"]
    exported = export_dir(Layout(home=root), "parquet")
    manifest = read(exported)
    assert manifest["head_version"] == first_head and manifest["rows"] > 0
    assert manifest["quality_signal"].startswith("none")
    shards = {p.name: p.stat().st_mtime_ns for p in exported.iterdir()}
    animagine = read(export_dir(Layout(home=root), "parquet-animagine"))
    assert animagine["rows"] == manifest["rows"]
    assert set(animagine["tag_calibrations"]) == {"quality", "aesthetic", "period"}

    before = _run_ids(root)
    again = demo_run_once(root)  # nothing changed: nothing ingested or labeled twice
    assert "all succeeded" in again
    # no file ingested again, no set evaluated again; the image index is refreshed again
    # (an incremental scan)
    assert _jobs(root, _run_ids(root) - before) == ["images", "main", "pool"]
    assert read_scores(Layout(home=root)).equals(scores)
    with LabelStore(root / "labels.sqlite", read_only=True) as store:
        assert store.events().height == events.height
        assert store.pair_events().height == pair_events.height  # no pair compared again
    # the same labels train the same head (same version), which stays active
    assert heads.active_version() == first_head and len(heads.cards()) == 1
    # ... so the same captions: no shard (nor the manifest) is written again
    assert {p.name: p.stat().st_mtime_ns for p in exported.iterdir()} == shards

    pool = pl.read_parquet(pool_path(Layout(home=root)))
    args = ["--profile", "demo", "--home", str(root)]
    result = CliRunner().invoke(cli, [*args, "head", "uncertainty-round"])
    assert result.exit_code == 0, result.output
    assert "40 posts added" in result.output
    grown = pl.read_parquet(pool_path(Layout(home=root)))
    assert grown.head(pool.height).equals(pool) and grown.height == pool.height + 40
    assert set(grown.tail(40)["round_kind"]) == {"uncertainty"}


ROOT = Path(__file__).resolve().parents[1]
ASSETS = (
    "image_evaluations",
    "raw_posts",
    "normalized_scores",
    "rating_pool",
    "manual_labels",
    "embeddings",
    "aesthetic_head",
    "scored_catalog",
    "caption_shards",
)
LOCATION_QUERY = """
{ workspaceOrError { ... on Workspace { locationEntries {
    name locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""
CHECKS_QUERY = """
{ assetNodes { assetKey { path } assetChecksOrError {
    ... on AssetChecks { checks { name } } } } }
"""
PARTITIONS_QUERY = """
{ assetNodeOrError(assetKey: {path: ["raw_posts"]}) { ... on AssetNode { partitionKeys } } }
"""
REPOSITORY_QUERY = """
{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }
"""
LAUNCH_MUTATION = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
  }
}
"""
RUN_QUERY = """
query Run($id: ID!) {
  runOrError(runId: $id) { ... on Run { status } ... on PythonError { message } }
}
"""
DONE = {"SUCCESS", "FAILURE", "CANCELED"}


def _get(url: str, timeout: float = 5) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def _graphql(base: str, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"{base}/graphql", body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            payload = json.loads(response.read())
    except urllib.error.HTTPError as e:  # the server's own words, not only the status
        raise AssertionError(f"GraphQL answered {e.code}: {e.read()[:2000]!r}") from None
    assert "errors" not in payload, payload["errors"]
    return payload["data"]


def _wait(what: str, probe, timeout: float, every: float = 1.0):
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            found = probe()
            if found:
                return found
            last = found
        except OSError as e:  # not listening yet
            last = e
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def _location_loaded(base: str) -> bool:
    entries = _graphql(base, LOCATION_QUERY)["workspaceOrError"]["locationEntries"]
    states = [e["locationOrLoadError"] for e in entries]
    errors = [s["message"] for s in states if s and s["__typename"] == "PythonError"]
    assert not errors, errors
    return bool(states) and all(s and s["__typename"] == "RepositoryLocation" for s in states)


@pytest.fixture
def demo_ui(demo_run: DemoRun, tmp_path: Path):
    """The demo, materialized (the session's demo run), behind a `scoretag ui` (dagster dev)
    on a free port."""
    home = demo_run.home
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCORETAG_", "DAGSTER_"))}
    scoretag = Path(sys.executable).parent / "scoretag"
    command = [str(scoretag), "--profile", "demo", "--home", str(home), "ui", "--port", str(port)]
    log = (tmp_path / "dagster-dev.log").open("w")
    server = subprocess.Popen(
        [*command, "--host", "127.0.0.1"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, to stop dagster dev and its children
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait("/server_info", lambda: _get(f"{base}/server_info"), timeout=180)
        _wait("the code location", lambda: _location_loaded(base), timeout=240)
        yield base, home
    finally:
        os.killpg(server.pid, signal.SIGINT)  # dagster dev shuts its daemon and servers down
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def _checks(base: str) -> dict[str, list[str]]:
    nodes = _graphql(base, CHECKS_QUERY)["assetNodes"]
    return {
        "/".join(n["assetKey"]["path"]): [c["name"] for c in n["assetChecksOrError"]["checks"]]
        for n in nodes
    }


def _smallest_raw_file(base: str, home: Path) -> str:
    """raw_posts' partition (a raw file, `<site>/<file>`) of the fewest bytes."""
    node = _graphql(base, PARTITIONS_QUERY)["assetNodeOrError"]
    return min(node["partitionKeys"], key=lambda key: (home / "inbox" / key).stat().st_size)


def _launch(base: str, job: str, tags: dict[str, str] | None = None) -> str:
    """Launch `job` as the UI's Launchpad does; returns the run's final status."""
    repository = _graphql(base, REPOSITORY_QUERY)["repositoriesOrError"]["nodes"][0]
    params = {
        "selector": {
            "repositoryLocationName": repository["location"]["name"],
            "repositoryName": repository["name"],
            "jobName": job,
        },
        "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]},
    }
    launched = _graphql(base, LAUNCH_MUTATION, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    def finished():
        found = _graphql(base, RUN_QUERY, {"id": run_id})["runOrError"]
        assert "message" not in found, found
        return found["status"] if found["status"] in DONE else None

    return _wait(f"run {run_id} of {job}", finished, timeout=900, every=2)


def _materialize_everything(base: str, partition: str) -> dict[str, str]:
    """The whole graph as `scoretag run` materializes it: the per-file job for one raw file
    (the demo has run every other), then `main`, everything downstream, with every check."""
    return {
        INGEST_JOB: _launch(base, INGEST_JOB, {"dagster/partition": partition}),
        MAIN_JOB: _launch(base, MAIN_JOB),
    }


def test_the_ui_shows_the_lineage_and_materializes_all_of_it(browser, demo_ui):
    # browser first: without Chromium the test skips before building anything
    base, home = demo_ui
    checks = _checks(base)
    assert set(ASSETS) <= set(checks), sorted(checks)
    assert all(checks[name] for name in ASSETS), checks  # every asset has checks
    (ARTIFACTS / "ui-failure.png").unlink(missing_ok=True)

    page = browser.new_page(viewport={"width": 1800, "height": 1100})
    _show_graph(page, base)
    for name in ASSETS:  # each asset's checks are listed on its page
        page.goto(f"{base}/assets/{name}?view=checks", wait_until="networkidle")
        for check in checks[name]:
            _visible(page, check)

    statuses = _materialize_everything(base, _smallest_raw_file(base, home))
    assert statuses == {INGEST_JOB: "SUCCESS", MAIN_JOB: "SUCCESS"}, statuses
    # An evaluation set, launched from the UI, shows its comparison and plot there.
    assert _launch(base, EVALUATE_JOB, {"dagster/partition": "demo-degraded"}) == "SUCCESS"
    page.goto(f"{base}/assets/image_evaluations", wait_until="networkidle")
    for text in ("sets_side_by_side", "differences", "score_histogram"):
        _visible(page, text)
    _show_graph(page, base)
    page.screenshot(path=str(ARTIFACTS / "ui-asset-graph.png"), full_page=True)


def _visible(page, text: str) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    # The UI also renders each name in a hidden element that measures it for truncation.
    try:
        page.get_by_text(text, exact=True).filter(visible=True).first.wait_for(timeout=60_000)
    except PlaywrightTimeout:
        page.screenshot(path=str(ARTIFACTS / "ui-failure.png"), full_page=True)
        raise


def _show_graph(page, base: str) -> None:
    """The global lineage with every group expanded (the UI's shortcut for it is Alt+E)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto(f"{base}/asset-groups", wait_until="networkidle")
    # The group's node in the graph: the second "ingest" shown (the first is the sidebar's).
    page.get_by_text("ingest", exact=True).filter(visible=True).nth(1).wait_for(timeout=60_000)
    first = page.get_by_text(ASSETS[0], exact=True).filter(visible=True).first
    for _ in range(10):  # the shortcut does nothing until the graph's handlers are attached
        page.locator("body").click(position={"x": 1000, "y": 300})  # the graph, not a field
        page.keyboard.press("Alt+e")
        try:
            first.wait_for(timeout=3_000)
            break
        except PlaywrightTimeout:
            continue
    for name in ASSETS:
        _visible(page, name)
