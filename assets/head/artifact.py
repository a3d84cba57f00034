"""A head on disk: a directory with `weights.safetensors` and `card.json`.

The card says what the head needs (backbone identity, input dim, input normalisation), what
it is (architecture, head type, hyper-parameters), what it learnt from (label count and a
hash of the labels) and how good it is (metrics). Its `version` is a hash of the weights and
of everything else on the card but `created_at`: the same training gives the same version.
Weights are safetensors; nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from assets.head.network import Architecture, HeadNet, l2_normalize

WEIGHTS = "weights.safetensors"
CARD = "card.json"
_UNHASHED = ("version", "created_at")
PREDICT_BATCH = 65_536


def _canonical(card: dict) -> bytes:
    return json.dumps(
        {k: v for k, v in card.items() if k not in _UNHASHED}, sort_keys=True, default=str
    ).encode()


def content_version(weights: bytes, card: dict) -> str:
    return hashlib.sha256(weights + b"\0" + _canonical(card)).hexdigest()[:12]


@dataclass
class Head:
    """A loaded head: its network (in eval mode) and its card."""

    net: HeadNet
    card: dict[str, Any]

    @property
    def version(self) -> str:
        return self.card["version"]

    @property
    def input_dim(self) -> int:
        return self.net.arch.input_dim

    @torch.inference_mode()
    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        """Scores in [0, 1] of an (n, dim) array; rows are L2-normalised here first."""
        if embeddings.ndim != 2 or embeddings.shape[1] != self.input_dim:
            raise ValueError(
                f"head {self.version} takes (n, {self.input_dim}) embeddings, "
                f"got {embeddings.shape}"
            )
        out = np.empty(len(embeddings), np.float32)
        for start in range(0, len(embeddings), PREDICT_BATCH):
            chunk = torch.from_numpy(np.array(embeddings[start : start + PREDICT_BATCH]))
            out[start : start + len(chunk)] = self.net.score(l2_normalize(chunk)).numpy()
        return out


def build_card(net: HeadNet, **fields: Any) -> dict[str, Any]:
    """A card for `net`: the architecture and input from the network, the rest from
    `fields` (backbone, head_type, hyperparameters, labels, metrics, ...)."""
    return {
        "input_dim": net.arch.input_dim,
        "normalization": "l2",
        "architecture": net.arch.to_dict(),
        **fields,
    }


def save_head(net: HeadNet, card: dict[str, Any], out: Path) -> Head:
    """Write the head to the directory `out` (whole or not at all); returns it, versioned."""
    weights = save_tensors({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()})
    card = {**card, "created_at": datetime.now(UTC).isoformat()}
    card["version"] = content_version(weights, card)
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / WEIGHTS).write_bytes(weights)
    (tmp / CARD).write_text(json.dumps(card, indent=2, sort_keys=True, default=str))
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return Head(net.eval(), card)


def load_head(path: Path) -> Head:
    """The head in directory `path`, refused if its files do not match its version."""
    card_path, weights_path = path / CARD, path / WEIGHTS
    if not card_path.is_file() or not weights_path.is_file():
        raise FileNotFoundError(f"{path} is not a head: it needs {CARD} and {WEIGHTS}")
    card = json.loads(card_path.read_text())
    weights = weights_path.read_bytes()
    if content_version(weights, card) != card.get("version"):
        raise ValueError(f"{path}: the weights or the card changed since the head was written")
    net = HeadNet(Architecture.from_dict(card["architecture"]))
    net.load_state_dict(load_tensors(weights))
    return Head(net.eval(), card)
