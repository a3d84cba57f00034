"""Shared test setup: every test runs with a clean scoretag environment."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"  # screenshots, for people
CHROMIUM = Path("/usr/bin/chromium")  # Debian's: Playwright cannot download its own here
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


USER_ENV = (
    "SCORETAG_PROFILE",
    "SCORETAG_HOME",
    "SCORETAG_OBJECT_ROOT",
    "SCORETAG_CONFIG",
    "DAGSTER_HOME",
)


@contextlib.contextmanager
def _environment_kept() -> Iterator[None]:
    """The environment as it was, afterwards: the CLI points SCORETAG_CONFIG, SCORETAG_HOME
    and DAGSTER_HOME at its profile when it runs (`activate`), and whatever runs next would
    otherwise read them."""
    before = dict(os.environ)
    for name in USER_ENV:
        os.environ.pop(name, None)
    yield
    for name in set(os.environ) - set(before):
        del os.environ[name]
    for name, value in before.items():
        if os.environ.get(name) != value:
            os.environ[name] = value


@pytest.fixture(autouse=True, scope="session")
def _session_env() -> Iterator[None]:
    """No test sees the developer's own profile, storage root or Dagster home."""
    with _environment_kept():
        yield


@pytest.fixture(autouse=True, scope="module")
def _module_env() -> Iterator[None]:
    """A module's fixtures (a demo run, a small home built through the CLI) set up in a clean
    environment and leave none of theirs to the next module's."""
    with _environment_kept():
        yield


@pytest.fixture(autouse=True)
def _clean_env() -> Iterator[None]:
    with _environment_kept():
        yield


@pytest.fixture
def memory_root() -> Iterator[str]:
    """A fresh object-store root on fsspec's in-memory filesystem (one per test, emptied after):
    what an s3:// or gs:// root is to the code, without a bucket."""
    import uuid

    import fsspec

    root = f"memory://scoretag-tests/{uuid.uuid4().hex}"
    yield root
    fs = fsspec.filesystem("memory")
    if fs.exists(root):
        fs.rm(root, recursive=True)


def shared_path(relative: str) -> Path:
    """A file under ../shared, or a skip that says why (a clone elsewhere has no ../shared)."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} is absent: this test needs the shared fixtures beside the project")
    return path


@pytest.fixture(scope="session")
def demo_layout(tmp_path_factory):
    """The full demo dataset, built once per test session into its own storage root."""
    from orchestration.settings import DemoSettings
    from orchestration.storage import Layout
    from scoretag.demo.build import build_demo

    layout = Layout(home=tmp_path_factory.mktemp("demo-home"))
    build_demo(layout, DemoSettings())
    return layout


@pytest.fixture(scope="session")
def demo_scored(demo_layout, tmp_path_factory):
    """The demo's raw files ingested (one posts file each) and normalized."""
    from assets.ingest.paths import inbox_files
    from assets.ingest.reader import ingest_file
    from assets.normalize.normalize import normalize_files
    from orchestration.settings import NormalizeSettings

    out = tmp_path_factory.mktemp("demo-ingested")
    files = []
    for raw in inbox_files(demo_layout):
        target = [out / f"{raw.site}-{raw.name}.{t}.parquet" for t in ("posts", "q", "s")]
        ingest_file(raw.path(demo_layout), *target, site=raw.site, source_file=raw.key)
        files.append(target[0])
    return files, normalize_files(files, NormalizeSettings())


@pytest.fixture
def scored_home(demo_layout, demo_scored, tmp_path):
    """A storage root as the pipeline leaves it after normalized_scores: the demo's posts
    files and scores in their places, its images linked in."""
    import shutil

    from assets.ingest.paths import STAGE as RAW
    from assets.ingest.paths import posts_files
    from assets.normalize.assets import scores_root
    from assets.normalize.normalize import update
    from orchestration.settings import NormalizeSettings
    from orchestration.storage import Layout

    files, _ = demo_scored
    layout = Layout(home=tmp_path / "home").ensure()
    for path in files:
        site, name = path.name.split("-", 1)
        target = layout.stage_dir(RAW) / "posts" / site / name.replace(".posts.parquet", ".parquet")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    update(scores_root(layout), posts_files(layout), NormalizeSettings(), tmp_path / "scratch")
    layout.images.rmdir()
    layout.images.symlink_to(demo_layout.images, target_is_directory=True)
    return layout


def tables_to_object_root(layout, object_root: str):
    """`layout` with an object root, its stage tables (raw_posts, normalized_scores) moved
    there: as a pipeline run with that root leaves them."""
    from dataclasses import replace

    from assets.ingest.paths import STAGE as RAW
    from assets.normalize.assets import STAGE as NORMALIZED
    from orchestration import objectstore

    shared = replace(layout, object_root=object_root)
    for stage in (RAW, NORMALIZED):
        local = layout.stage_dir(stage)
        for path in sorted(p for p in local.rglob("*.parquet") if p.is_file()):
            objectstore.upload(path, shared.shared_stage_dir(stage) / path.relative_to(local))
            path.unlink()
    return shared


@pytest.fixture
def browser():
    """Debian's Chromium under Playwright, or a skip that says why."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium to run the browser tests")
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
