"""Imports point one way: stages use upstream stages and the shared infrastructure, never what
runs them (the definitions, the CLI); the Dagster wiring never imports the user's tools; a
stage's logic modules stay free of Dagster. Read from the source, so every new module is
checked without a new test."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The lineage's order: a stage may import itself and the stages before it.
STAGES = ("ingest", "normalize", "pool", "labels", "embeddings", "head", "catalog", "captions")
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


def test_every_stage_is_in_the_lineage_order():
    stages = {p.name for p in (ROOT / "assets").iterdir() if (p / "__init__.py").is_file()}
    assert stages == set(STAGES)


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_imports_only_upstream_stages(stage: str):
    allowed = STAGES[: STAGES.index(stage) + 1]
    wrong = {
        f"{_rel(path)}: {name}"
        for path in _modules(f"assets/{stage}")
        for name in _imports(path)
        if _within(name, "assets") and name.split(".")[1] in STAGES
        if name.split(".")[1] not in allowed
    }
    assert not wrong, sorted(wrong)


def test_stages_never_import_the_cli_or_the_wiring():
    wrong = {
        f"{_rel(path)}: {name}"
        for path in _modules("assets")
        for name in _imports(path)
        if _within(name, "scoretag") or any(_within(name, w) for w in WIRING)
    }
    assert not wrong, sorted(wrong)


def test_orchestration_never_imports_the_users_tools():
    wrong = {
        f"{_rel(path)}: {name}"
        for path in _modules("orchestration")
        for name in _imports(path)
        if _within(name, "scoretag")
    }
    assert not wrong, sorted(wrong)


def test_stage_logic_modules_do_not_import_dagster():
    wrong = {
        f"{_rel(path)}: {name}"
        for path in _modules("assets")
        if path.name not in DAGSTER_MODULES
        for name in _imports(path)
        if _within(name, "dagster") or _within(name, "orchestration.resources")
    }
    assert not wrong, sorted(wrong)


def test_orchestration_holds_no_cli_demo_or_benchmarks():
    """The user's tools live in the scoretag package: none is left behind, and no module here
    prints to a terminal (click and rich are the CLI's)."""
    leftovers = [
        _rel(path)
        for path in _modules("orchestration")
        if {"cli", "demo", "benchmarks"} & set(path.relative_to(ROOT).with_suffix("").parts)
        or any(_within(name, "click") or _within(name, "rich") for name in _imports(path))
    ]
    assert not leftovers, leftovers
