"""Cross-validated training: out-of-fold predictions of the head and of its baselines on the
same folds, their metrics, and the final head fit on every label.

Baselines, always beside the head: the constant predictor (the training folds' mean), ridge,
and an imported LAION head when one exists for the same backbone (it is not trained, only
evaluated on the same items).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import polars as pl

from assets.head import metrics
from assets.head.artifact import Head
from assets.head.folds import fold_pairs, stratified_folds
from assets.head.models import MLPConfig, fit_mlp, fit_ridge, to_target
from assets.head.network import HeadNet

HEAD_TYPES = ("mlp", "ridge")


@dataclass(frozen=True)
class TrainingData:
    """Labelled items: their embeddings (n, dim), labels on the 1-5 scale, and the groups
    metrics are broken down by."""

    X: np.ndarray
    labels: np.ndarray
    sites: np.ndarray
    ratings: np.ndarray
    post_keys: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def labels_hash(self) -> str:
        """What the head learnt from: post keys and targets, order-free."""
        frame = pl.DataFrame({"post_key": self.post_keys, "label": self.labels}).sort("post_key")
        rows = "\n".join(f"{k}\t{v:.6f}" for k, v in frame.iter_rows())
        return hashlib.sha256(rows.encode()).hexdigest()


@dataclass(frozen=True)
class TrainSettings:
    head_type: str = "mlp"
    mlp: MLPConfig = MLPConfig()
    folds: int = 5
    seed: int = 0

    def hyperparameters(self) -> dict:
        base = {"folds": self.folds, "seed": self.seed}
        return {**base, **asdict(self.mlp)} if self.head_type == "mlp" else base


@dataclass
class CrossValidation:
    """Out-of-fold predictions per model, and what they score."""

    predictions: dict[str, np.ndarray]
    folds: np.ndarray
    best_epochs: list[int] = field(default_factory=list)
    ridge_alphas: list[float] = field(default_factory=list)

    def metrics(self, data: TrainingData) -> dict:
        return {
            name: {
                "overall": metrics.report(data.labels, p),
                "by_site": metrics.report_by(data.labels, p, data.sites),
                "by_rating": metrics.report_by(data.labels, p, data.ratings),
            }
            for name, p in self.predictions.items()
        }

    def calibration(self, data: TrainingData, model: str = "head") -> list[dict]:
        return metrics.calibration(data.labels, self.predictions[model])


def cross_validate(
    data: TrainingData,
    settings: TrainSettings,
    laion: Head | None = None,
    on_fold: Callable[[int], None] = lambda fold: None,
) -> CrossValidation:
    if settings.head_type not in HEAD_TYPES:
        raise ValueError(f"head_type {settings.head_type!r}: use one of {HEAD_TYPES}")
    y = to_target(data.labels)
    folds = stratified_folds(data.labels, data.sites, settings.folds, settings.seed)
    names = ["constant", "ridge", "head"]
    predictions = {name: np.zeros(len(y)) for name in names}
    result = CrossValidation(predictions, folds)
    for fold, (train, test) in enumerate(fold_pairs(folds, settings.folds)):
        predictions["constant"][test] = y[train].mean()
        ridge = fit_ridge(data.X[train], y[train])
        result.ridge_alphas.append(ridge.alpha)
        predictions["ridge"][test] = ridge.predict(data.X[test])
        if settings.head_type == "mlp":
            fit = fit_mlp(data.X[train], y[train], settings.mlp, seed=settings.seed + fold)
            result.best_epochs.append(fit.best_epoch)
            predictions["head"][test] = fit.predict(data.X[test])
        else:
            predictions["head"][test] = predictions["ridge"][test]
        on_fold(fold)
    if laion is not None:
        predictions["laion"] = laion.predict(data.X).astype(np.float64)
    return result


def fit_final(data: TrainingData, settings: TrainSettings, cv: CrossValidation) -> HeadNet:
    """The head on every label: an MLP trains for the median of the folds' best epoch
    counts (there is no held-out data left to stop on)."""
    y = to_target(data.labels)
    if settings.head_type == "ridge":
        return fit_ridge(data.X, y).net()
    epochs = max(1, int(np.median(cv.best_epochs)))
    return fit_mlp(data.X, y, settings.mlp, seed=settings.seed, epochs=epochs).net
