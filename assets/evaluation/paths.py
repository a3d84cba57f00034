"""Where evaluation sets come from and where their results go.

$SCORETAG_HOME/evaluations/<name>/          a set: a folder dropped here, or a link to
                                            the folder `scoretag evaluate PATH` was given
<data>/image_evaluations/<name>/images.parquet    the images embedded, their prompts
<data>/image_evaluations/<name>/scores.parquet    each image's score under each head
<data>/image_evaluations/<name>/failures.parquet  what could not be scored, and why
<data>/image_evaluations/<name>/summary.json      the figures the asset and the CLI show
"""

from __future__ import annotations

import os
from pathlib import Path

from assets.evaluation.sets import check_name, signature
from assets.head.paths import registry
from orchestration.storage import Layout

STAGE = "image_evaluations"


def sets_dir(layout: Layout) -> Path:
    return layout.home / "evaluations"


def set_root(layout: Layout, name: str) -> Path:
    return sets_dir(layout) / check_name(name)


def results_dir(layout: Layout, name: str) -> Path:
    return layout.stage_dir(STAGE) / check_name(name)


def set_names(layout: Layout) -> list[str]:
    """The sets under the evaluations folder: every folder (or link to one) with a valid name."""
    root = sets_dir(layout)
    if not root.is_dir():
        return []
    names = []
    for entry in sorted(root.iterdir()):
        try:
            check_name(entry.name)
        except ValueError:
            continue
        if entry.is_dir():
            names.append(entry.name)
    return names


def set_mark(layout: Layout, name: str) -> str:
    """What a set's evaluation depends on: its files' signature and the active head. A set is
    evaluated again when either changes (under a new head, from cached vectors alone)."""
    head = registry(layout).active_version() or "none"
    return f"{signature(set_root(layout, name))}@{head}"


class SetConflict(ValueError):
    """A set name already taken by another folder."""


def register(layout: Layout, folder: Path, name: str) -> Path:
    """Make `folder` the set `name`: a folder already under evaluations/ is used in place;
    any other is linked there (its files are never copied or moved). A name that already
    names another folder is refused."""
    folder = folder.resolve()
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder of images")
    link = set_root(layout, name)
    if link.is_symlink() or link.exists():
        if link.resolve() == folder:
            return link
        raise SetConflict(
            f"the evaluation set {name!r} is already {link.resolve()}: give another --name, "
            f"or remove {link}"
        )
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(folder, link, target_is_directory=True)
    return link
