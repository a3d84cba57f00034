"""Walk a source folder, listing again only the folders whose modification time changed.

A folder's mtime changes when a name in it is added, removed or renamed, so a folder whose
mtime is the one recorded at the last scan holds the same files, sub-folders and tar shards:
they are taken from the record (one stat per folder, none per file). A folder modified in the
last seconds before its listing is recorded as unstable and listed again next time, since a
file added in the same clock tick would not change its mtime.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import polars as pl

FOLDERS: dict[str, pl.DataType] = {
    "source": pl.String,
    "dir": pl.String,
    "mtime_ns": pl.Int64,  # -1: list again on the next scan
    "subdirs": pl.List(pl.String),
    "tars": pl.List(pl.String),
}
UNSTABLE_NS = 2_000_000_000


@dataclass
class Walk:
    """One source's folders now, and the files of those listed again."""

    folders: list[tuple] = field(default_factory=list)  # FOLDERS rows
    listed: dict[str, list[str]] = field(default_factory=dict)  # folder -> its file names
    tars: list[str] = field(default_factory=list)  # every tar shard's path


def _list(folder: str, nlink: int) -> tuple[list[str], list[str], list[str]]:
    """(files, sub-folders, tar shards) of a folder; hidden names left out."""
    if nlink == 2:  # no sub-folder (ext4, xfs): names alone, no entry objects
        names = [n for n in os.listdir(folder) if not n.startswith(".")]
        return names, [], []
    files, subdirs = [], []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                subdirs.append(entry.name)
            else:
                files.append(entry.name)
    return files, subdirs, []


def walk(source: str, root: str, known: dict[str, tuple], skip: set[str]) -> Walk:
    """Every folder under `root` (but those in `skip`, other sources' roots), reusing
    `known` (folder -> (mtime_ns, subdirs, tars)) where a folder is unchanged."""
    out = Walk()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            st = os.stat(folder)
        except (FileNotFoundError, NotADirectoryError):
            continue
        record = known.get(folder)
        if record is not None and record[0] == st.st_mtime_ns:
            _, subdirs, tars = record
        else:
            started = time.time_ns()
            try:
                files, subdirs, _ = _list(folder, st.st_nlink)
            except (FileNotFoundError, NotADirectoryError, PermissionError):
                continue
            tars = [n for n in files if n.endswith(".tar")]
            out.listed[folder] = [n for n in files if not n.endswith(".tar")]
            stable = started - st.st_mtime_ns > UNSTABLE_NS
            record = (st.st_mtime_ns if stable else -1, subdirs, tars)
        out.folders.append((source, folder, record[0], list(subdirs), list(tars)))
        out.tars += [f"{folder}/{n}" for n in tars]
        stack += [p for n in subdirs if (p := f"{folder}/{n}") not in skip]
    return out
