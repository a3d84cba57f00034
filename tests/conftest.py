"""Shared test setup: every test runs with a clean scoretag environment."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's own profile, storage root or Dagster home."""
    for name in ("SCORETAG_PROFILE", "SCORETAG_HOME", "SCORETAG_CONFIG", "DAGSTER_HOME"):
        monkeypatch.delenv(name, raising=False)


def shared_path(relative: str) -> Path:
    """A file under ../shared, or a skip that says why (a clone elsewhere has no ../shared)."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} is absent: this test needs the shared fixtures beside the project")
    return path


@pytest.fixture(scope="session")
def demo_layout(tmp_path_factory):
    """The full demo dataset, built once per test session into its own storage root."""
    from orchestration.demo.build import build_demo
    from orchestration.settings import DemoSettings
    from orchestration.storage import Layout

    layout = Layout(home=tmp_path_factory.mktemp("demo-home"))
    build_demo(layout, DemoSettings())
    return layout
