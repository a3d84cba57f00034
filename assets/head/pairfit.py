"""Heads fit to pairwise judgments (assets/head/pairs.py has the loss and its tie model).

* `fit_linear_pairs`: the linear baseline on pairs, the Davidson loss on a linear score with
  an L2 penalty, minimised by L-BFGS (convex in the weights for a fixed ν); the penalty is
  chosen on a seeded fifth of the pairs held out, then the fit is redone on all of them.
* `fit_mlp_pairs`: the MLP of models.py trained on pairs alone, or on ratings and pairs (MSE
  on the rated items plus `weight` x the Davidson loss on the pairs), early-stopped on held-out
  pairs (and rated items) like the ratings MLP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from assets.head.models import (
    EarlyStop,
    MLPConfig,
    MLPFit,
    Ridge,
    _architecture,
    _validation_split,
)
from assets.head.network import HeadNet
from assets.head.pairs import davidson_nll

PAIR_ALPHAS = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


@dataclass(frozen=True)
class PairConfig:
    temperature: float = 0.1  # T: score gaps are divided by it (set, not learnt: see pairs.py)
    weight: float = 0.1  # the Davidson term's weight beside the MSE when both are used


@dataclass(frozen=True)
class Judged:
    """Pairs as index arrays into the rows of the X they come with."""

    first: np.ndarray
    second: np.ndarray
    outcome: np.ndarray

    def take(self, index: np.ndarray) -> Judged:
        return Judged(self.first[index], self.second[index], self.outcome[index])

    def items(self) -> np.ndarray:
        return np.union1d(self.first, self.second)

    def __len__(self) -> int:
        return len(self.outcome)


def _solve_linear(diff: torch.Tensor, outcome: torch.Tensor, alpha: float) -> torch.Tensor:
    beta = torch.zeros(diff.shape[1], dtype=torch.float64, requires_grad=True)
    log_nu = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [beta, log_nu], lr=1.0, max_iter=200, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = davidson_nll(diff @ beta, outcome, log_nu) + 0.5 * alpha * beta @ beta
        loss.backward()
        return loss

    optimizer.step(closure)
    return beta.detach()


def fit_linear_pairs(
    X: np.ndarray, pairs: Judged, temperature: float = 0.1, seed: int = 0
) -> Ridge:
    """A linear head from pairs: score = x . w + b with w = T β, β minimising the mean Davidson
    loss of x_first . β - x_second . β plus α/2 |β|²; b puts the judged items' mean score at
    0.5 (pairs do not place the scale). `alpha` is the chosen penalty, `loo_mse` nan."""
    if len(pairs) == 0:
        raise ValueError("no pairs to fit a linear head to")
    X64 = np.asarray(X, np.float64)
    diff = torch.from_numpy(X64[pairs.first] - X64[pairs.second])
    outcome = torch.from_numpy(np.asarray(pairs.outcome, np.float64))
    held = np.random.default_rng([seed, 7]).random(len(pairs)) < 0.2
    alpha = PAIR_ALPHAS[-1]
    if held.any() and (~held).any():
        losses = []
        for candidate in PAIR_ALPHAS:
            beta = _solve_linear(diff[~held], outcome[~held], candidate)
            with torch.no_grad():
                # ν refit on the held-out pairs would flatter no alpha: use ν = 1 for all
                losses.append(float(davidson_nll(diff[held] @ beta, outcome[held], 0.0)))
        alpha = PAIR_ALPHAS[int(np.argmin(losses))]
    weight = temperature * _solve_linear(diff, outcome, alpha).numpy()
    bias = 0.5 - float(np.mean(X64[pairs.items()] @ weight))
    return Ridge(weight=weight, bias=bias, alpha=alpha, loo_mse=math.nan)


def _pair_validation(n: int, share: float, rng: np.random.Generator) -> np.ndarray:
    held = rng.random(n) < share
    if n >= 10 and not held.any():
        held[rng.integers(n)] = True
    return held


def _step_loss(
    net: HeadNet,
    X: torch.Tensor,
    y: torch.Tensor,
    rated: torch.Tensor,
    judged: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    log_nu: torch.Tensor,
    pair: PairConfig,
    pair_weight: float,
) -> torch.Tensor:
    loss = X.new_zeros(())
    if len(rated):
        loss = loss + torch.nn.functional.mse_loss(net(X[rated]), y[rated])
    first, second, outcome = judged
    if len(outcome):
        gap = (net(X[first]) - net(X[second])) / pair.temperature
        loss = loss + pair_weight * davidson_nll(gap, outcome, log_nu)
    return loss


def fit_mlp_pairs(
    X: np.ndarray,
    y: np.ndarray,
    pairs: Judged,
    config: MLPConfig | None = None,
    pair: PairConfig = PairConfig(),
    seed: int = 0,
    epochs: int | None = None,
) -> MLPFit:
    """Train on the pairs and on the rated rows of `y` (qualities in [0, 1], nan where a row
    is not rated; all nan: pairs alone). Early stopping and `epochs` as in models.fit_mlp;
    the validation loss is the training loss on held-out rows and pairs."""
    config = config or MLPConfig()
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    y = np.asarray(y, np.float64)
    rated = np.flatnonzero(~np.isnan(y))
    pair_weight = pair.weight if rated.size else 1.0
    X_all = torch.from_numpy(np.asarray(X, np.float32))
    y_all = torch.from_numpy(np.nan_to_num(y, nan=0.0).astype(np.float32))
    if epochs is None:
        held_rated = _validation_split(y[rated], config.validation_share, rng)
        held_pairs = _pair_validation(len(pairs), config.validation_share, rng)
    else:
        held_rated, held_pairs = np.zeros(len(rated), bool), np.zeros(len(pairs), bool)
    train_rated, val_rated = rated[~held_rated], rated[held_rated]
    train_pairs, val_pairs = np.flatnonzero(~held_pairs), np.flatnonzero(held_pairs)
    tensors = [torch.from_numpy(a) for a in (pairs.first, pairs.second)]
    tensors.append(torch.from_numpy(np.asarray(pairs.outcome, np.float32)))
    net = HeadNet(_architecture(X_all.shape[1], config))
    log_nu = torch.zeros((), requires_grad=True)
    optimizer = torch.optim.AdamW(
        [
            {"params": net.parameters(), "weight_decay": config.weight_decay},
            {"params": [log_nu], "weight_decay": 0.0},
        ],
        lr=config.lr,
    )
    generator = torch.Generator().manual_seed(seed)
    stop = EarlyStop(config.patience)
    history = []
    steps = max(1, math.ceil(max(len(train_pairs), len(train_rated)) / config.batch_size))
    for epoch in range(1, (epochs or config.max_epochs) + 1):
        net.train()
        pair_order = torch.from_numpy(train_pairs)[
            torch.randperm(len(train_pairs), generator=generator)
        ]
        rated_order = torch.from_numpy(train_rated)[
            torch.randperm(len(train_rated), generator=generator)
        ]
        for step in range(steps):
            p = pair_order[step::steps]
            loss = _step_loss(
                net,
                X_all,
                y_all,
                rated_order[step::steps],
                tuple(t[p] for t in tensors),
                log_nu,
                pair,
                pair_weight,
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if epochs is not None:
            continue
        net.eval()
        with torch.inference_mode():
            v = torch.from_numpy(val_pairs)
            val = _step_loss(
                net,
                X_all,
                y_all,
                torch.from_numpy(val_rated),
                tuple(t[v] for t in tensors),
                log_nu,
                pair,
                pair_weight,
            )
            val = float(val)
        history.append(
            {"epoch": epoch, "val_loss": val, "tie_nu": math.exp(float(log_nu.detach()))}
        )
        if stop.after(epoch, val, net):
            break
    if epochs is None:
        stop.restore(net)
    net.eval()
    if not rated.size:
        _centre(net, X_all[torch.from_numpy(pairs.items())])
    return MLPFit(net, best_epoch=epochs or stop.epoch, history=history)


def _centre(net: HeadNet, X: torch.Tensor) -> None:
    """Pairs alone do not place the scale: shift it so the judged items' mean score is 0.5."""
    with torch.inference_mode():
        mean = float(net(X).mean()) if len(X) else 0.0
    net.arch = replace(net.arch, shift=0.5 - mean * net.arch.scale)
