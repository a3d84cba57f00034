"""Head types: `ridge` (closed form, the baseline always computed) and `mlp` (Linear + GELU +
dropout layers, AdamW with weight decay, early stopping on a validation split, and an
optional Bradley-Terry term on pairs of items with different labels).

Targets are qualities in [0, 1] (label 1 -> 0, label 5 -> 1); inputs are L2-normalised
embeddings. Every fit is seeded: the same data and settings give the same weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from assets.head.network import Architecture, HeadNet

RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-3, 3, 13))


def to_target(labels: np.ndarray) -> np.ndarray:
    """Labels on the 1-5 scale to qualities in [0, 1]."""
    return (np.asarray(labels, np.float64) - 1.0) / 4.0


@dataclass
class Ridge:
    """A fitted ridge head: weights, bias and the alpha leave-one-out chose."""

    weight: np.ndarray  # (dim,)
    bias: float
    alpha: float
    loo_mse: float

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(X, np.float64) @ self.weight + self.bias, 0.0, 1.0)

    def net(self) -> HeadNet:
        net = HeadNet(Architecture(dims=(len(self.weight), 1), activations=("none",)))
        with torch.no_grad():
            net.linears[0].weight.copy_(torch.from_numpy(self.weight).view(1, -1))
            net.linears[0].bias.fill_(self.bias)
        return net.eval()


def fit_ridge(X: np.ndarray, y: np.ndarray, alphas: tuple[float, ...] = RIDGE_ALPHAS) -> Ridge:
    """Closed-form ridge on centred data, alpha chosen by exact leave-one-out error.

    With XᵀX = V diag(λ) Vᵀ and Z = X V, the hat matrix's diagonal for any alpha is
    Σ_j Z_ij² / (λ_j + α), so every alpha's leave-one-out error costs O(n·d) after one
    eigendecomposition of a d x d matrix."""
    X = np.asarray(X, np.float64)
    y = np.asarray(y, np.float64)
    mean_x, mean_y = X.mean(axis=0), y.mean()
    Xc, yc = X - mean_x, y - mean_y
    eigenvalues, V = np.linalg.eigh(Xc.T @ Xc)
    eigenvalues = np.clip(eigenvalues, 0.0, None)
    Z = Xc @ V
    Zy = Z.T @ yc
    Z2 = Z * Z
    best = None
    for alpha in alphas:
        shrink = 1.0 / (eigenvalues + alpha)
        fitted = Z @ (shrink * Zy)
        # the centring adds 1/n to every leverage
        leverage = Z2 @ shrink + 1.0 / len(y)
        loo = np.mean(((yc - fitted) / np.clip(1.0 - leverage, 1e-9, None)) ** 2)
        if best is None or loo < best[1]:
            best = (alpha, loo)
    alpha, loo = best
    weight = V @ (Zy / (eigenvalues + alpha))
    return Ridge(weight=weight, bias=float(mean_y - mean_x @ weight), alpha=alpha, loo_mse=loo)


@dataclass(frozen=True)
class MLPConfig:
    hidden: tuple[int, ...] = (256,)
    dropout: float = 0.1
    weight_decay: float = 0.05
    lr: float = 2e-3
    batch_size: int = 512
    max_epochs: int = 200
    patience: int = 10
    validation_share: float = 0.1
    pairwise_weight: float = 0.0  # 0: plain MSE; > 0: add the Bradley-Terry term
    pairwise_temperature: float = 0.1  # score gaps are divided by this in the BT term


@dataclass
class MLPFit:
    net: HeadNet
    best_epoch: int
    history: list[dict] = field(default_factory=list)

    def predict(self, X: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.net.score(torch.from_numpy(np.asarray(X, np.float32))).numpy()


def _architecture(dim: int, config: MLPConfig) -> Architecture:
    return Architecture(
        dims=(dim, *config.hidden, 1),
        activations=(*("gelu",) * len(config.hidden), "none"),
        dropout=config.dropout,
    )


def _bradley_terry(out: torch.Tensor, y: torch.Tensor, temperature: float) -> torch.Tensor:
    """-log σ((s_i - s_j) / T) over the batch's pairs with y_i > y_j."""
    better = y[:, None] > y[None, :]
    if not better.any():
        return out.new_zeros(())
    gaps = (out[:, None] - out[None, :])[better] / temperature
    return torch.nn.functional.softplus(-gaps).mean()


def _validation_split(y: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """A validation mask stratified by rounded label, so early stopping sees every label."""
    mask = np.zeros(len(y), bool)
    levels = np.round(y * 4).astype(int)
    for level in np.unique(levels):
        members = np.flatnonzero(levels == level)
        take = int(round(share * len(members)))
        mask[rng.permutation(members)[:take]] = True
    return mask


class EarlyStop:
    """The best validation loss so far and the weights that had it; `after` says when
    `patience` epochs have passed without a better one."""

    def __init__(self, patience: int):
        self.patience = patience
        self.loss, self.epoch, self.state = float("inf"), 0, None

    def after(self, epoch: int, loss: float, net: torch.nn.Module) -> bool:
        if loss < self.loss:
            self.loss, self.epoch = loss, epoch
            self.state = {k: v.clone() for k, v in net.state_dict().items()}
            return False
        return epoch - self.epoch >= self.patience

    def restore(self, net: torch.nn.Module) -> None:
        """The best epoch's weights back into `net` (none kept: left as they are)."""
        if self.state is not None:
            net.load_state_dict(self.state)


def fit_mlp(
    X: np.ndarray,
    y: np.ndarray,
    config: MLPConfig = MLPConfig(),
    seed: int = 0,
    epochs: int | None = None,
    strata: np.ndarray | None = None,
) -> MLPFit:
    """Train on (X, y). With `epochs`, train exactly that many epochs on everything (the
    final head, after cross-validation found the epoch count); otherwise stop early on a
    validation split and keep the best epoch's weights. The split is stratified by `strata`
    (qualities in [0, 1]; default `y`): a head learning transformed targets passes the
    qualities, so it holds out the same items as the head learning the qualities."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    X_all = torch.from_numpy(np.asarray(X, np.float32))
    y_all = torch.from_numpy(np.asarray(y, np.float32))
    if epochs is None:
        levels = np.asarray(y if strata is None else strata)
        held = _validation_split(levels, config.validation_share, rng)
        train, val = np.flatnonzero(~held), np.flatnonzero(held)
    else:
        train, val = np.arange(len(y)), np.array([], int)
    net = HeadNet(_architecture(X_all.shape[1], config))
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(seed)
    stop = EarlyStop(config.patience)
    history = []
    for epoch in range(1, (epochs or config.max_epochs) + 1):
        net.train()
        order = torch.from_numpy(train)[torch.randperm(len(train), generator=generator)]
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            out = net(X_all[batch])
            loss = torch.nn.functional.mse_loss(out, y_all[batch])
            if config.pairwise_weight > 0:
                bt = _bradley_terry(out, y_all[batch], config.pairwise_temperature)
                loss = loss + config.pairwise_weight * bt
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if epochs is not None:
            continue
        net.eval()
        with torch.inference_mode():
            val_mse = float(torch.mean((net.score(X_all[val]) - y_all[val]) ** 2))
        history.append({"epoch": epoch, "val_mse": val_mse})
        if stop.after(epoch, val_mse, net):
            break
    if epochs is None:
        stop.restore(net)
    return MLPFit(net.eval(), best_epoch=epochs or stop.epoch, history=history)
