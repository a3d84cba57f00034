"""The README and docs/ stay short, linked and complete: every relative link and anchor
resolves, every CLI command and option is on the CLI page, every bench on the benchmarks
page, and every stage and export format has its page."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from assets.captions.formats import FORMATS
from scoretag.cli import cli

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", ROOT / "deploy" / "README.md", *sorted(DOCS.rglob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces to
    hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _prose(page: Path) -> str:
    return FENCE.sub("", page.read_text())


def _anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for heading in re.findall(r"^#{1,6} (.+)$", _prose(page), re.M):
        slug = _slug(heading)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _broken_links(page: Path) -> list[str]:
    broken = []
    for target in LINK.findall(_prose(page)):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{target}: no heading #{anchor} in {resolved.name}")
    return broken


def test_readme_reads_in_five_minutes():
    assert (ROOT / "README.md").stat().st_size < 12 * 1024


def test_readme_names_the_two_setup_commands():
    blocks = re.findall(r"^```sh\n(.*?)^```", (ROOT / "README.md").read_text(), re.S | re.M)
    commands = [line.split("#")[0].strip() for line in blocks[0].splitlines()]
    assert commands == ["make demo", "make test"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_resolves(page: Path):
    assert _broken_links(page) == []


def test_the_link_checker_sees_a_broken_anchor(tmp_path: Path):
    (tmp_path / "a.md").write_text("# Title `x`\n\n[ok](#title-x) [bad](b.md#nope) [gone](c.md)")
    (tmp_path / "b.md").write_text("# Other\n")
    assert _broken_links(tmp_path / "a.md") == [
        "b.md#nope: no heading #nope in b.md",
        "c.md: no such file",
    ]


def _commands(group: click.Group, path: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


def _section(page: str, top: str) -> str:
    """The text of `## scoretag <top>` up to the next second-level heading."""
    match = re.search(rf"^## scoretag {top}\n(.*?)(?=^## |\Z)", page, re.S | re.M)
    assert match, f"docs/cli.md has no section '## scoretag {top}'"
    return match.group(1)


@pytest.mark.parametrize(
    "path,command", list(_commands(cli)), ids=lambda v: " ".join(v) if isinstance(v, tuple) else ""
)
def test_every_command_and_option_is_in_the_cli_reference(path, command):
    section = _section((DOCS / "cli.md").read_text(), path[0])
    assert re.search(rf"\b{re.escape(path[-1])}\b", section), f"{' '.join(path)} not described"
    options = [o for p in command.params if isinstance(p, click.Option) for o in p.opts]
    missing = [o for o in options if o.startswith("--") and o not in section and o != "--help"]
    assert missing == [], f"scoretag {' '.join(path)}: options not in docs/cli.md"


def test_every_bench_is_on_the_benchmarks_page():
    page = (DOCS / "benchmarks.md").read_text()
    benches = set(cli.commands["bench"].commands) - {"all"}
    assert {name for name in benches if f"scoretag bench {name}" not in page} == set()


def test_every_stage_and_format_has_a_page():
    stages = {p.name for p in (ROOT / "assets").iterdir() if (p / "assets.py").exists()}
    assert stages == {p.stem for p in (DOCS / "stages").glob("*.md")}
    assert set(FORMATS) == {p.stem for p in (DOCS / "formats").glob("*.md")}
