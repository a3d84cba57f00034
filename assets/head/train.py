"""Cross-validated training: out-of-fold predictions of the head and of its baselines on the
same folds, their metrics, and the final head fit on every label.

Baselines, always beside the head: the constant predictor (the training folds' mean), ridge,
and an imported LAION head when one exists for the same backbone (it is not trained, only
evaluated on the same items).

`train_on` says what the head learns from: "ratings" (today's MSE on the rated items),
"pairs" (the Davidson loss on human pairs alone, pairs.py) or "both". Ridge follows: fit to
the ratings in "ratings" and "both" (the ratings baseline the head must beat with the pairs'
help), the linear Davidson fit in "pairs" (and whenever a fold has no rated items). Folds stay
per post: posts seen only in pairs are dealt to folds too, a pair is held out in the fold
holding both its posts, and a pair across folds neither trains nor tests in its two folds.
Whatever `train_on`, every model is scored on the held-out pairs when there are any.

`target_transform` says what the head learns from the ratings (targets.py): the qualities
("none"), or their RankGauss transform ("rankgauss", fitted per fold on that fold's training
targets), its predictions mapped back onto the label scale before anything scores them. With
"rankgauss" the same head without the transform is trained on the same folds beside it
("head (no transform)"), so the figures show what the transform bought; ridge, the baseline,
always learns the qualities. RankGauss is for ratings only: `train_on` "pairs" or "both" with
it is refused (pairs have no targets to rank, and the pairs' temperature is a gap on the
label scale, which the transform would silently change).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import polars as pl
import torch

from assets.head import metrics
from assets.head.artifact import Head
from assets.head.folds import fold_pairs, stratified_folds
from assets.head.models import MLPConfig, MLPFit, Ridge, fit_mlp, fit_ridge, to_target
from assets.head.network import HeadNet
from assets.head.pairfit import Judged, PairConfig, fit_linear_pairs, fit_mlp_pairs
from assets.head.pairs import Pairs, accuracy, extend_folds, fold_split, pair_folds
from assets.head.targets import (
    TARGET_TRANSFORMS,
    Identity,
    TargetTransform,
    fit_transform,
)

HEAD_TYPES = ("mlp", "ridge")
TRAIN_ON = ("ratings", "pairs", "both")
# The row of the head trained without the target transform, beside "head", in the CV table.
UNTRANSFORMED = "head (no transform)"


@dataclass(frozen=True)
class TrainingData:
    """Labelled items: their embeddings (n, dim), labels on the 1-5 scale, and the groups
    metrics are broken down by."""

    X: np.ndarray
    labels: np.ndarray
    sites: np.ndarray
    ratings: np.ndarray
    post_keys: np.ndarray
    pairs: Pairs | None = None  # human pairs over these items and posts seen only in pairs

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
    train_on: str = "ratings"
    pair: PairConfig = PairConfig()
    target_transform: str = "none"

    def hyperparameters(self) -> dict:
        base = {"folds": self.folds, "seed": self.seed}
        if self.target_transform != "none":
            # only then, so a head without a transform keeps the card (and version) it had
            base = {**base, "target_transform": self.target_transform}
        if self.train_on != "ratings":
            # only then, so a head trained on ratings keeps the card (and version) it had
            base = {
                **base,
                "train_on": self.train_on,
                **{f"pair_{k}": v for k, v in asdict(self.pair).items()},
            }
        return {**base, **asdict(self.mlp)} if self.head_type == "mlp" else base


@dataclass
class CrossValidation:
    """Out-of-fold predictions per model, and what they score. With pairs: every item's
    out-of-fold score (rated items first, then posts seen only in pairs) and their folds."""

    predictions: dict[str, np.ndarray]
    folds: np.ndarray
    best_epochs: list[int] = field(default_factory=list)
    ridge_alphas: list[float] = field(default_factory=list)
    item_scores: dict[str, np.ndarray] = field(default_factory=dict)
    item_folds: np.ndarray | None = None
    pair_folds: list[dict] = field(
        default_factory=list
    )  # per fold: pairs trained, held out, dropped

    def metrics(self, data: TrainingData) -> dict:
        out = {
            name: {
                "overall": metrics.report(data.labels, p),
                "by_site": metrics.report_by(data.labels, p, data.sites),
                "by_rating": metrics.report_by(data.labels, p, data.ratings),
            }
            for name, p in self.predictions.items()
        }
        if self.item_folds is not None and data.pairs is not None:
            pairs = data.pairs
            held = pair_folds(self.item_folds, pairs.first, pairs.second) >= 0
            for name, scores in self.item_scores.items():
                out[name]["pairs"] = accuracy(
                    scores, pairs.first[held], pairs.second[held], pairs.outcome[held]
                )
        return out

    def pairs_report(self, data: TrainingData) -> dict | None:
        """The card's `pairs` section: counts, labelers, held-out accuracy per model."""
        if self.item_folds is None or data.pairs is None:
            return None
        pairs = data.pairs
        held = pair_folds(self.item_folds, pairs.first, pairs.second) >= 0
        return {
            **pairs.summary(),
            "held_out": int(held.sum()),
            "across_folds": int((~held).sum()),
            "folds": self.pair_folds,
            "accuracy": {
                name: accuracy(s, pairs.first[held], pairs.second[held], pairs.outcome[held])
                for name, s in self.item_scores.items()
            },
        }

    def calibration(self, data: TrainingData, model: str = "head") -> list[dict]:
        return metrics.calibration(data.labels, self.predictions[model])


def _check(settings: TrainSettings) -> None:
    if settings.head_type not in HEAD_TYPES:
        raise ValueError(f"head_type {settings.head_type!r}: use one of {HEAD_TYPES}")
    if settings.train_on not in TRAIN_ON:
        raise ValueError(f"train_on {settings.train_on!r}: use one of {TRAIN_ON}")
    if settings.target_transform not in TARGET_TRANSFORMS:
        raise ValueError(
            f"target_transform {settings.target_transform!r}: use one of {TARGET_TRANSFORMS}"
        )
    if settings.target_transform != "none" and settings.train_on != "ratings":
        raise ValueError(
            f'target_transform {settings.target_transform!r} needs train_on = "ratings" '
            f"(not {settings.train_on!r}): it transforms ratings, and pairs have none"
        )


@dataclass(frozen=True)
class _Fitted:
    """One fold's head: predictions on the label scale, and its best epoch (an MLP's)."""

    predict: Callable[[np.ndarray], np.ndarray]
    best_epoch: int | None = None


def _rated_head(
    X: np.ndarray,
    y: np.ndarray,
    settings: TrainSettings,
    seed: int,
    transform: TargetTransform,
    ridge: Ridge,
) -> _Fitted:
    """The head on ratings, learning `transform.encode(y)`; its predictions decoded. `ridge`
    is the fold's ridge on the qualities: the head itself when there is no transform."""
    if settings.head_type == "ridge":
        fit = ridge if transform.kind == "none" else fit_ridge(X, transform.encode(y))
        return _Fitted(lambda Z: transform.decode(fit.predict(Z)))
    mlp = fit_mlp(X, transform.encode(y), settings.mlp, seed=seed, strata=y)
    return _Fitted(lambda Z: transform.decode(mlp.predict(Z)), mlp.best_epoch)


def _rated_heads(
    X: np.ndarray, y: np.ndarray, settings: TrainSettings, seed: int, ridge: Ridge
) -> dict[str, _Fitted]:
    """The fold's head ("head") and, when it learns transformed targets, the same head on
    the qualities (UNTRANSFORMED), on the same training items."""
    transform = fit_transform(settings.target_transform, y)  # this fold's targets only
    heads = {"head": _rated_head(X, y, settings, seed, transform, ridge)}
    if transform.kind != "none":
        heads[UNTRANSFORMED] = _rated_head(X, y, settings, seed, Identity(), ridge)
    return heads


def _model_names(settings: TrainSettings) -> list[str]:
    names = ["constant", "ridge", "head"]
    return [*names, UNTRANSFORMED] if settings.target_transform != "none" else names


def _pairs_of(data: TrainingData, settings: TrainSettings) -> Pairs | None:
    pairs = data.pairs if data.pairs is not None and len(data.pairs) else None
    if pairs is None and settings.train_on != "ratings":
        raise ValueError(f"train_on {settings.train_on!r} needs pairs, and there are none")
    return pairs


def _items(data: TrainingData, pairs: Pairs) -> np.ndarray:
    """Every item's embedding: the rated items, then the posts seen only in pairs."""
    if not len(pairs.post_keys):
        return np.asarray(data.X)
    return np.concatenate([np.asarray(data.X, np.float32), np.asarray(pairs.X, np.float32)])


def cross_validate(
    data: TrainingData,
    settings: TrainSettings,
    imported: dict[str, Head] | None = None,
    on_fold: Callable[[int], None] = lambda fold: None,
) -> CrossValidation:
    _check(settings)
    pairs = _pairs_of(data, settings)
    if pairs is not None:
        result = _cross_validate_with_pairs(data, pairs, settings, on_fold)
        # Imported heads (LAION's, V2.5's) by name: scored on every item, trained on none.
        for name, head in (imported or {}).items():
            result.item_scores[name] = head.predict(_items(data, pairs)).astype(np.float64)
    else:
        result = _cross_validate_ratings(data, settings, on_fold)
    for name, head in (imported or {}).items():
        result.predictions[name] = head.predict(data.X).astype(np.float64)
    return result


def _cross_validate_ratings(
    data: TrainingData, settings: TrainSettings, on_fold: Callable[[int], None]
) -> CrossValidation:
    y = to_target(data.labels)
    folds = stratified_folds(data.labels, data.sites, settings.folds, settings.seed)
    predictions = {name: np.zeros(len(y)) for name in _model_names(settings)}
    result = CrossValidation(predictions, folds)
    for fold, (train, test) in enumerate(fold_pairs(folds, settings.folds)):
        predictions["constant"][test] = y[train].mean()
        ridge = fit_ridge(data.X[train], y[train])
        result.ridge_alphas.append(ridge.alpha)
        predictions["ridge"][test] = ridge.predict(data.X[test])
        heads = _rated_heads(data.X[train], y[train], settings, settings.seed + fold, ridge)
        for name, fitted in heads.items():
            predictions[name][test] = fitted.predict(data.X[test])
        if heads["head"].best_epoch is not None:
            result.best_epochs.append(heads["head"].best_epoch)
        on_fold(fold)
    return result


def _rated_folds(data: TrainingData, settings: TrainSettings) -> np.ndarray:
    if len(data) >= settings.folds:
        return stratified_folds(data.labels, data.sites, settings.folds, settings.seed)
    return extend_folds(np.zeros(0, np.int64), len(data), settings.folds, settings.seed)


def _cross_validate_with_pairs(
    data: TrainingData, pairs: Pairs, settings: TrainSettings, on_fold: Callable[[int], None]
) -> CrossValidation:
    """The ratings' loop with pairs beside it: rated items keep the folds (and, in "ratings",
    the predictions) they have without pairs; posts seen only in pairs are scored by the same
    fold's models."""
    k, n = settings.folds, len(data)
    y = to_target(data.labels)
    folds = _rated_folds(data, settings)
    X_items = _items(data, pairs)
    item_folds = extend_folds(folds, len(X_items) - n, k, settings.seed)
    judged = Judged(pairs.first, pairs.second, pairs.outcome)
    predictions = {name: np.zeros(n) for name in _model_names(settings)}
    scores = {name: np.zeros(len(X_items)) for name in predictions}
    result = CrossValidation(predictions, folds, item_scores=scores, item_folds=item_folds)
    for fold, (train, test) in enumerate(fold_pairs(folds, k)):
        extra = np.flatnonzero(item_folds == fold)
        extra = extra[extra >= n]
        pair_train, pair_test, dropped = fold_split(item_folds, judged.first, judged.second, fold)
        result.pair_folds.append(
            {"fold": fold, "train": len(pair_train), "held_out": len(pair_test), "dropped": dropped}
        )
        train_pairs = judged.take(pair_train)
        predictions["constant"][test] = scores["constant"][extra] = (
            y[train].mean() if len(train) else 0.5
        )
        if settings.train_on == "pairs" or not len(train):
            ridge = fit_linear_pairs(
                X_items, train_pairs, settings.pair.temperature, settings.seed + fold
            )
        else:
            ridge = fit_ridge(data.X[train], y[train])
        result.ridge_alphas.append(ridge.alpha)
        predictions["ridge"][test] = ridge.predict(data.X[test])
        scores["ridge"][extra] = ridge.predict(X_items[extra])
        if settings.target_transform != "none":  # train_on "ratings": _check saw to it
            heads = _rated_heads(data.X[train], y[train], settings, settings.seed + fold, ridge)
        elif settings.head_type == "ridge":
            heads = {"head": _Fitted(ridge.predict)}
        else:
            fit = _fit_fold_mlp(data, X_items, y, train, train_pairs, settings, fold)
            heads = {"head": _Fitted(fit.predict, fit.best_epoch)}
        for name, fitted in heads.items():
            predictions[name][test] = fitted.predict(data.X[test])
            scores[name][extra] = fitted.predict(X_items[extra])
        if heads["head"].best_epoch is not None:
            result.best_epochs.append(heads["head"].best_epoch)
        on_fold(fold)
    for name in predictions:
        scores[name][:n] = predictions[name]
    return result


def _fit_fold_mlp(
    data: TrainingData,
    X_items: np.ndarray,
    y: np.ndarray,
    train: np.ndarray,
    pairs: Judged,
    settings: TrainSettings,
    fold: int,
) -> MLPFit:
    seed = settings.seed + fold
    if settings.train_on == "ratings":
        return fit_mlp(data.X[train], y[train], settings.mlp, seed=seed)
    targets = np.full(len(X_items), np.nan)
    if settings.train_on == "both":
        targets[train] = y[train]
    return fit_mlp_pairs(X_items, targets, pairs, settings.mlp, settings.pair, seed=seed)


def final_transform(data: TrainingData, settings: TrainSettings) -> TargetTransform:
    """The final head's target transform, fitted on every label: the head's card keeps it
    (`to_dict`), and its scores are decoded with it (artifact.Head.predict)."""
    _check(settings)
    return fit_transform(settings.target_transform, to_target(data.labels))


def fit_final(data: TrainingData, settings: TrainSettings, cv: CrossValidation) -> HeadNet:
    """The head on every label: an MLP trains for the median of the folds' best epoch
    counts (there is no held-out data left to stop on). With a target transform the network
    learns `final_transform(...).encode` of the qualities; decode its scores with it."""
    y = to_target(data.labels)
    pairs = _pairs_of(data, settings)
    if settings.train_on == "ratings" or pairs is None:
        target = final_transform(data, settings).encode(y)
        if settings.head_type == "ridge":
            return fit_ridge(data.X, target).net()
        epochs = max(1, int(np.median(cv.best_epochs)))
        return fit_mlp(data.X, target, settings.mlp, seed=settings.seed, epochs=epochs).net
    X_items = _items(data, pairs)
    judged = Judged(pairs.first, pairs.second, pairs.outcome)
    if settings.head_type == "ridge":
        if settings.train_on == "pairs" or not len(data):
            return fit_linear_pairs(X_items, judged, settings.pair.temperature, settings.seed).net()
        return fit_ridge(data.X, y).net()
    targets = np.full(len(X_items), np.nan)
    if settings.train_on == "both":
        targets[: len(data)] = y
    epochs = max(1, int(np.median(cv.best_epochs)))
    return fit_mlp_pairs(
        X_items, targets, judged, settings.mlp, settings.pair, seed=settings.seed, epochs=epochs
    ).net


@dataclass
class Trained:
    """A head fit by `fit_head`: `predict` gives scores in [0, 1] of (n, dim) embeddings
    (the network's output decoded by its target transform, when it learnt one)."""

    net: HeadNet
    transform: TargetTransform = Identity()

    def predict(self, X: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            scores = self.net.score(torch.from_numpy(np.asarray(X, np.float32)))
        return self.transform.decode(scores.numpy().astype(np.float64))


def fit_head(
    X: np.ndarray,
    labels: np.ndarray | None = None,
    pairs: Judged | None = None,
    settings: TrainSettings = TrainSettings(),
) -> Trained:
    """One head, no cross-validation and no Dagster (for benchmarks such as the labels bench):
    on ratings (`labels` on the 1-5 scale per row of X, nan where a row is not rated), on
    `pairs` (indices into the rows of X and outcomes, pairs.WON/LOST/TIE for `first`), or on
    both. What is given decides what it learns from (`settings.train_on` is not read); an MLP
    stops early on a validation split, as in each fold of `cross_validate`. A ridge head
    given ratings fits them (the ratings baseline) and fits pairs only when there are none.
    `settings.target_transform` is read: a transform other than "none" needs ratings alone."""
    _check(settings)
    X = np.asarray(X, np.float32)
    y = np.full(len(X), np.nan) if labels is None else to_target(labels)
    rated = np.flatnonzero(~np.isnan(y))
    if pairs is None or not len(pairs):
        if not rated.size:
            raise ValueError("fit_head needs labels, pairs or both")
        transform = fit_transform(settings.target_transform, y[rated])
        target = transform.encode(y[rated])
        if settings.head_type == "ridge":
            return Trained(fit_ridge(X[rated], target).net(), transform)
        fit = fit_mlp(X[rated], target, settings.mlp, seed=settings.seed, strata=y[rated])
        return Trained(fit.net, transform)
    if settings.target_transform != "none":
        raise ValueError(
            f"target_transform {settings.target_transform!r} transforms ratings: "
            "fit_head with pairs needs target_transform = 'none'"
        )
    if settings.head_type == "ridge":
        if rated.size:
            return Trained(fit_ridge(X[rated], y[rated]).net())
        return Trained(fit_linear_pairs(X, pairs, settings.pair.temperature, settings.seed).net())
    fit = fit_mlp_pairs(X, y, pairs, settings.mlp, settings.pair, seed=settings.seed)
    return Trained(fit.net)
