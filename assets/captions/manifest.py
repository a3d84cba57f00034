"""Every export's `manifest.json`: its shards (name, rows, sha256), and what made them: head,
calibration, caption rules, filter, counts, and the command that makes it again.

Shard files are named by their content, `shard-<index>-<first 12 hex of sha256>.<ext>`: an
export never overwrites a shard of the previous one, it adds the shards whose content
changed, then replaces the manifest (atomically), then removes the shards the new manifest no
longer lists. A reader that goes by the manifest always sees one whole export.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from orchestration.atomic import write_bytes

MANIFEST = "manifest.json"
SHARD = re.compile(r"^shard-(\d{5})-([0-9a-f]{12})\.(parquet|jsonl|files|json|tar)$")
# Changes nothing about the shards: a manifest that differs only here is not rewritten.
VOLATILE = ("created_at", "written")


def shard_name(index: int, sha256: str, suffix: str) -> str:
    return f"shard-{index:05d}-{sha256[:12]}{suffix}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read(out: Path) -> dict | None:
    """The manifest in `out`, or None where there is none yet."""
    path = out / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise ValueError(f"{path} is not a readable manifest: {e}") from None


def _stable(manifest: dict) -> dict:
    return {k: v for k, v in manifest.items() if k not in VOLATILE}


def write(out: Path, manifest: dict) -> bool:
    """Write the manifest (whole or not at all); False, and nothing written, when it says the
    same as the one there but for its time."""
    previous = read(out)
    if previous is not None and _stable(previous) == _stable(manifest):
        return False
    write_bytes(out / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    return True


def verify(out: Path, manifest: dict) -> list[str]:
    """What does not match: shards missing, or whose sha256 differs from the manifest's."""
    problems = []
    for shard in manifest["shards"]:
        path = out / shard["name"]
        if not path.is_file():
            problems.append(f"{shard['name']}: missing")
        elif sha256_file(path) != shard["sha256"]:
            problems.append(f"{shard['name']}: sha256 differs from the manifest's")
    return problems


def stale_shards(out: Path, manifest: dict) -> list[Path]:
    """Shard files in `out` that the manifest does not list."""
    listed = {s["name"] for s in manifest["shards"]}
    return sorted(p for p in out.iterdir() if SHARD.match(p.name) and p.name not in listed)
