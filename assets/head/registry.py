"""Every head trained or imported, and which one is active.

    <stage dir>/heads/<version>/{weights.safetensors,card.json}
    <stage dir>/active.json      {"version", "activated_at", "reason", "by"} and the earlier ones
    <stage dir>/gates.json       {version: [gate records, oldest first]}: each training's
                                 comparison with the head active then (active or not)

A head is only ever added; activating one rewrites `active.json` (atomically) and keeps the
history, so the catalog can tell which head scored what and a user can go back.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from assets.head.artifact import CARD, Head, load_head, save_head
from assets.head.network import HeadNet
from orchestration.atomic import write_bytes


class Registry:
    def __init__(self, stage_dir: Path):
        self.dir = stage_dir
        self.heads_dir = stage_dir / "heads"
        self.active_path = stage_dir / "active.json"
        self.gates_path = stage_dir / "gates.json"

    def path(self, version: str) -> Path:
        return self.heads_dir / version

    def add(self, head_dir: Path) -> Head:
        """Copy a head directory in (a no-op when that version is there already)."""
        head = load_head(head_dir)
        target = self.path(head.version)
        if not target.is_dir():
            tmp = target.with_name(f".{target.name}.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(head_dir, tmp)
            tmp.rename(target)
        return head

    def save(self, net: HeadNet, card: dict) -> Head:
        """Write a new head into the registry under its version."""
        staging = self.heads_dir / ".staging"
        head = save_head(net, card, staging)
        target = self.path(head.version)
        if target.is_dir():  # the same head again: same content, same version
            shutil.rmtree(staging)
        else:
            staging.rename(target)
        return head

    def cards(self) -> list[dict]:
        """Every head's card, oldest first."""
        paths = sorted(self.heads_dir.glob(f"*/{CARD}")) if self.heads_dir.is_dir() else []
        cards = [json.loads(p.read_text()) for p in paths if not p.parent.name.startswith(".")]
        return sorted(cards, key=lambda c: c.get("created_at", ""))

    def resolve(self, version: str) -> str:
        """A full version from a unique prefix of one."""
        matches = [c["version"] for c in self.cards() if c["version"].startswith(version)]
        if len(matches) != 1:
            known = ", ".join(c["version"] for c in self.cards()) or "none"
            what = "no head" if not matches else "several heads"
            raise KeyError(f"{what} with version {version!r} (known: {known})")
        return matches[0]

    def load(self, version: str) -> Head:
        """The head of a full version (read directly) or of a unique prefix of one."""
        path = self.path(version)
        return load_head(path if (path / CARD).is_file() else self.path(self.resolve(version)))

    def history(self) -> list[dict]:
        if not self.active_path.is_file():
            return []
        return json.loads(self.active_path.read_text())["history"]

    def active_version(self) -> str | None:
        history = self.history()
        return history[-1]["version"] if history else None

    def active(self) -> Head | None:
        version = self.active_version()
        return None if version is None else self.load(version)

    def activate(self, version: str, reason: str, by: Literal["gate", "hand"] = "hand") -> str:
        """Make `version` the active head; `by` says whether it passed the quality gate or a
        person chose it, for the catalog's check to read (the reason is for people)."""
        version = self.resolve(version)
        entry = {
            "version": version,
            "activated_at": datetime.now(UTC).isoformat(),
            "reason": reason,
            "by": by,
        }
        history = [*self.history(), entry]
        payload = {"version": version, "history": history}
        write_bytes(self.active_path, json.dumps(payload, indent=2).encode())
        return version

    def gates(self) -> dict[str, list[dict]]:
        """Every gate record, per head version (oldest first)."""
        if not self.gates_path.is_file():
            return {}
        return json.loads(self.gates_path.read_text())

    def gate(self, version: str) -> dict | None:
        """The latest gate record of a head (None for a head never gated: an imported one,
        or one trained before records were kept)."""
        records = self.gates().get(version)
        return records[-1] if records else None

    def record_gate(self, record: dict) -> None:
        """Keep a training's gate record (it names the head's `version`) beside the others."""
        gates = self.gates()
        gates.setdefault(record["version"], []).append(record)
        write_bytes(self.gates_path, json.dumps(gates, indent=2, default=str).encode())
