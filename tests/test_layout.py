"""Imports point one way: stages use upstream stages and the shared infrastructure, never what
runs them (the definitions, the CLI); the Dagster wiring never imports the user's tools; a
stage's logic modules stay free of Dagster. Read from the source, so every new module is
checked without a new test."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The lineage's order: a stage may import itself and the stages before it.
STAGES = (
    "ingest",
    "images",
    "normalize",
    "pool",
    "labels",
    "embeddings",
    "head",
    "catalog",
    "captions",
    "evaluation",
)
# The Dagster wiring that runs stages: a stage importing it would import its own caller.
WIRING = (
    "orchestration.definitions",
    "orchestration.jobs",
    "orchestration.schedules",
    "orchestration.sensors",
    "orchestration.runner",
    "orchestration.deploy",
)
# Modules of a stage that wrap its logic for Dagster (its assets, checks and jobs); every
# other module is plain logic.
DAGSTER_MODULES = {"assets.py", "checks.py", "jobs.py"}


def _modules(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts)


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _violations(package: str, wrong: Callable[[Path, str], bool]) -> list[str]:
    """`module: imported name` for every import under `package` that `wrong` refuses."""
    return sorted(
        f"{_rel(path)}: {name}"
        for path in _modules(package)
        for name in _imports(path)
        if wrong(path, name)
    )


def test_every_stage_is_in_the_lineage_order():
    stages = {p.name for p in (ROOT / "assets").iterdir() if (p / "__init__.py").is_file()}
    assert stages == set(STAGES)


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_imports_only_upstream_stages(stage: str):
    allowed = STAGES[: STAGES.index(stage) + 1]

    def downstream(path: Path, name: str) -> bool:
        parts = name.split(".")
        return parts[0] == "assets" and len(parts) > 1 and parts[1] in STAGES[len(allowed) :]

    assert not _violations(f"assets/{stage}", downstream)


def test_stages_never_import_the_cli_or_the_wiring():
    def runner(path: Path, name: str) -> bool:
        return _within(name, "scoretag") or any(_within(name, w) for w in WIRING)

    assert not _violations("assets", runner)


def test_orchestration_never_imports_the_users_tools():
    assert not _violations("orchestration", lambda path, name: _within(name, "scoretag"))


def test_stage_logic_modules_do_not_import_dagster():
    def dagster(path: Path, name: str) -> bool:
        if path.name in DAGSTER_MODULES:
            return False
        return _within(name, "dagster") or _within(name, "orchestration.resources")

    assert not _violations("assets", dagster)


def test_orchestration_holds_no_cli_demo_or_benchmarks():
    """The user's tools live in the scoretag package: none is left behind, and no module here
    prints to a terminal (click and rich are the CLI's)."""
    folders = [
        _rel(p)
        for p in _modules("orchestration")
        if {"cli", "demo", "benchmarks"} & set(p.relative_to(ROOT).with_suffix("").parts)
    ]
    assert not folders

    def terminal(path: Path, name: str) -> bool:
        return _within(name, "click") or _within(name, "rich")

    assert not _violations("orchestration", terminal)
