"""A head on disk: a directory with `weights.safetensors` and `card.json`.

The card says what the head needs (backbone identity, input dim, input normalisation), what
it is (architecture, head type, hyper-parameters), what it learnt from (label count and a
hash of the labels) and how good it is (metrics). A head that learnt transformed targets
(RankGauss) has its transform's knots on the card (`target_transform`): its network's output
is decoded with them, here, so every caller gets scores on the label scale. Its `version` is
a hash of the weights and of everything else on the card but `created_at`: the same training
gives the same version.
Weights are safetensors; nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from assets.head.network import Architecture, HeadNet, l2_normalize
from assets.head.targets import from_dict as target_transform

WEIGHTS = "weights.safetensors"
CARD = "card.json"
_UNHASHED = ("version", "created_at")
PREDICT_BATCH = 65_536
# float32 rows converted at a time on the affine path: 6 MB at 768-d, cache-sized.
AFFINE_CHUNK = 2_048


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

    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        """Scores in [0, 1] of an (n, dim) array; rows are L2-normalised here first."""
        return self.scorer()(embeddings)

    def scorer(self) -> Callable[[np.ndarray], np.ndarray]:
        """`predict` with what it needs from the weights worked out once, for callers that
        score many arrays (one per embedding shard) with the same head."""
        network = self._network_scorer()
        transform = target_transform(self.card.get("target_transform"))
        if transform.kind == "none":
            return network

        def decoded(embeddings: np.ndarray) -> np.ndarray:
            # the network scores in the transform's [0, 1]; the label scale, in float32 too
            return transform.decode(network(embeddings)).astype(np.float32)

        return decoded

    def _network_scorer(self) -> Callable[[np.ndarray], np.ndarray]:
        """The network's own scores in [0, 1], before any target transform's decoding."""
        affine = affine_map(self.net)
        version, dim = self.version, self.input_dim

        @torch.inference_mode()
        def predict(embeddings: np.ndarray) -> np.ndarray:
            if embeddings.ndim != 2 or embeddings.shape[1] != dim:
                raise ValueError(
                    f"head {version} takes (n, {dim}) embeddings, got {embeddings.shape}"
                )
            source = _tensor_view(embeddings)
            if affine is not None:
                return _affine_scores(source, *affine)
            out = np.empty(len(embeddings), np.float32)
            for start in range(0, len(embeddings), PREDICT_BATCH):
                chunk = source[start : start + PREDICT_BATCH]
                out[start : start + len(chunk)] = self.net.score(l2_normalize(chunk)).numpy()
            return out

        return predict


def affine_map(net: HeadNet) -> tuple[torch.Tensor, float] | None:
    """(w, c) with score = clip(x . w / |x| + c, 0, 1) when the network is one affine map
    (every activation "none", as ridge and LAION's linearMSE are); None otherwise.

    Folded from the output back in float64: a row vector times each weight matrix, so even
    LAION's 768-1024-128-64-16-1 stack costs a few vector-matrix products."""
    arch = net.arch
    if any(a != "none" for a in arch.activations):
        return None
    row = np.ones(1, np.float64)
    const = 0.0
    for linear in reversed(net.linears):
        weight = linear.weight.detach().to(torch.float64).cpu().numpy()
        const += float(row @ linear.bias.detach().to(torch.float64).cpu().numpy())
        row = row @ weight
    w = torch.from_numpy((row * arch.scale).astype(np.float32))
    return w, const * arch.scale + arch.shift


def _tensor_view(embeddings: np.ndarray) -> torch.Tensor:
    """The array as a tensor without a copy where it can be one. Embeddings read from parquet
    are read-only views of arrow buffers; they are only ever read here."""
    array = np.ascontiguousarray(embeddings)
    if array.flags.writeable:
        return torch.from_numpy(array)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The given NumPy array is not writable")
        return torch.from_numpy(array)


def _affine_scores(source: torch.Tensor, w: torch.Tensor, const: float) -> np.ndarray:
    """clip(x . w / max(|x|, eps) + c, 0, 1) per row, `AFFINE_CHUNK` rows at a time: each chunk
    is converted to float32 into one buffer that stays in cache for the product and the norm,
    so the embeddings are read from memory once, at their own (fp16) width."""
    n = len(source)
    out = torch.empty(n, dtype=torch.float32)
    buffer = torch.empty((min(n, AFFINE_CHUNK), source.shape[1]), dtype=torch.float32)
    for start in range(0, n, AFFINE_CHUNK):
        chunk = source[start : start + AFFINE_CHUNK]
        x = buffer[: len(chunk)]
        x.copy_(chunk)
        scores = out[start : start + len(chunk)]
        torch.mv(x, w, out=scores)
        # F.normalize's eps: a zero row scores as clip(c) there too.
        scores.div_(torch.linalg.vector_norm(x, dim=1).clamp_min_(1e-12))
        scores.add_(const).clamp_(0.0, 1.0)
    return out.numpy()


class BackboneMismatch(ValueError):
    """A head asked to score the embeddings of a backbone other than the one it was made for."""


def require_backbone(head: Head, backbone: dict[str, Any]) -> None:
    """Refuse to let `head` score embeddings of `backbone` (an Identity as a dict) when its
    card names another: vectors of the same width from another model are scored without any
    error, and the scores mean nothing. A card naming no backbone cannot be checked."""
    made_for = head.card.get("backbone")
    if not made_for or same_space(space_of(head.card), backbone):
        return
    raise BackboneMismatch(
        f"head {head.version} was made for {describe_space(space_of(head.card), backbone)} "
        f"embeddings, but the embeddings here are {describe_space(backbone, made_for)}'s: "
        "activate a head made for this backbone (`scoretag head list` shows each head's "
        "backbone) or switch [backbone] back"
    )


def _plain(value: Any) -> Any:
    # Tuples and lists compare unequal: both sides as JSON has them.
    return json.loads(json.dumps(value, sort_keys=True, default=str))


QUICK_GELU = "quick_gelu"
_QUICKGELU_SUFFIX = "-quickgelu"


def space_of(card: dict[str, Any]) -> dict[str, Any]:
    """The embedding space a head's card names. A LAION head imported before identities
    recorded the activation was stamped GELU by omission, but LAION trained on OpenAI CLIP,
    which is QuickGELU: its card names that space."""
    made_for = dict(card.get("backbone") or {})
    if str(card.get("head_type", "")).startswith("laion-") and not made_for.get("activation"):
        made_for["activation"] = QUICK_GELU
    return made_for


def _space(backbone: dict[str, Any]) -> dict[str, Any]:
    """An identity as the embedding space it makes: the activation left out when it is GELU
    (open_clip's default, as identities written before the field existed say by omission),
    and `X-quickgelu` as `X`, which is the same network once the activation is named."""
    plain = {k: v for k, v in _plain(backbone).items() if not (k == "activation" and v is None)}
    if plain.get("activation") == QUICK_GELU:
        plain["model"] = str(plain.get("model", "")).removesuffix(_QUICKGELU_SUFFIX)
    return plain


def same_space(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two identities (as dicts) give comparable embeddings, however their weights
    were fetched (a tag, a declared local copy, the Hugging Face cache)."""
    return _space(a) == _space(b)


def describe_space(backbone: dict[str, Any], other: dict[str, Any] | None = None) -> str:
    """A backbone as "model / weights", with the activation when it is QuickGELU or, beside
    `other`, when the activation is all that tells the two apart."""
    text = f"{backbone.get('model', '?')} / {backbone.get('weights', '?')}"
    quick = backbone.get("activation") == QUICK_GELU
    alike = other is not None and all(backbone.get(k) == other.get(k) for k in ("model", "weights"))
    if quick or alike:
        text += " with QuickGELU" if quick else " with GELU"
    return text


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
