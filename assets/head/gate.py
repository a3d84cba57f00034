"""The quality gate: a new head replaces the active one only when it is good enough on its
own (cross-validated Spearman at least a minimum), not worse than ridge, the baseline that
is always computed, by more than a margin (in Spearman and, when there are held-out human
pairs, in pair accuracy), and not worse than the active head.

The new head is compared with the active one on labels that neither was trained on:

* an active head trained on none of our labels (an imported LAION head): every current
  label, the new head's out-of-fold predictions against the active head's predictions;
* an active head whose card lists the labels it was trained on: the labels added since
  (posts it was not trained on), the same way, when there are at least `min_fresh_labels`;
* otherwise (too few new labels, or an older card without that list): the two heads' own
  cross-validated Spearman, each on the labels it was trained with.

An active head made for another backbone cannot score these embeddings and is not compared.
Whatever the comparison, the decision keeps which one it was, on how many labels, and both
Spearman values.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

import numpy as np

from assets.head import metrics

# How the new head was compared with the active head.
Method = Literal[
    "all_labels",  # the active head was trained on none of our labels
    "fresh_labels",  # the labels added since the active head was trained
    "cross_validation",  # each head's own cross-validated Spearman
    "no_active_head",
    "same_head",  # the training gave the active head again
    "other_backbone",  # the active head was made for another backbone: not comparable
    "no_figures",  # the active head has neither a label list nor CV figures: not comparable
]
COMPARED: tuple[Method, ...] = ("all_labels", "fresh_labels", "cross_validation")


class ScoringHead(Protocol):
    """What the gate needs of the active head (an artifact.Head)."""

    card: dict[str, Any]

    def predict(self, embeddings: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Comparison:
    """The new head against the active one."""

    method: Method
    note: str  # which labels, and why those
    active_version: str | None = None
    active_type: str | None = None
    active_trained_on: int | None = None  # labels of ours; 0 for an imported head
    labels: int = 0  # labels the new head's figure is on
    active_labels: int = 0  # labels the active head's figure is on (the same set but in CV)
    new_spearman: float = math.nan
    active_spearman: float = math.nan

    @property
    def compared(self) -> bool:
        return self.method in COMPARED

    def holds(self, margin: float) -> bool:
        """The new head is at least as good as the active one, less `margin`. Nothing to
        compare with holds; an undefined figure of the new head does not."""
        if not self.compared:
            return True
        if math.isnan(self.new_spearman):
            return False
        return math.isnan(self.active_spearman) or (
            self.new_spearman >= self.active_spearman - margin
        )


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    reason: str
    head_spearman: float
    ridge_spearman: float
    min_spearman: float
    ridge_margin: float
    versus: dict | None = None  # Comparison as a dict, None when no comparison was made
    active_margin: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def trained_on(card: dict) -> frozenset[str] | None:
    """The post keys a head was trained on: empty for a head trained on none of our labels
    (an imported one: its card has no `labels`), None when the card does not say (heads
    written before the list was kept: only a count and a hash)."""
    labels = card.get("labels")
    if labels is None:
        return frozenset()
    if isinstance(labels, dict) and isinstance(labels.get("post_keys"), list):
        return frozenset(str(k) for k in labels["post_keys"])
    return None


def _count(card: dict) -> int | None:
    labels = card.get("labels")
    if labels is None:
        return 0
    count = labels.get("count") if isinstance(labels, dict) else None
    return int(count) if isinstance(count, int | float) else None


def _cv_spearman(card: dict) -> float | None:
    try:
        return float(card["metrics"]["cv"]["head"]["overall"]["spearman"])
    except (KeyError, TypeError, ValueError):
        return None


def compare(
    active: ScoringHead | None,
    *,
    labels: np.ndarray,
    post_keys: np.ndarray,
    X: np.ndarray,
    new_oof: np.ndarray,
    new_cv_spearman: float,
    min_fresh_labels: int,
    new_version: str | None = None,
    same_backbone: bool = True,
) -> Comparison:
    """The new head (its out-of-fold predictions `new_oof` of `labels`, one per row of `X`
    and `post_keys`) against `active`."""
    if active is None:
        return Comparison("no_active_head", "no head was active")
    card = active.card
    version = str(card.get("version"))
    known = {
        "active_version": version,
        "active_type": str(card.get("head_type", "?")),
        "active_trained_on": _count(card),
    }
    if version == new_version:
        note = f"the training gave the active head {version} again"
        return Comparison("same_head", note, **known)
    if not same_backbone:
        note = f"the active head {version} was made for another backbone: not compared"
        return Comparison("other_backbone", note, **known)
    y = np.asarray(labels, dtype=float)
    keys = trained_on(card)
    if keys is not None:
        unseen = ~np.isin(np.asarray(post_keys).astype(str), np.array(sorted(keys), dtype=str))
        n = int(unseen.sum())
        defined = n >= 2 and np.unique(y[unseen]).size > 1
        if not keys or (n >= min_fresh_labels and defined):
            ours = np.asarray(active.predict(np.asarray(X)[unseen]), dtype=float)
            new = np.asarray(new_oof, dtype=float)[unseen]
            if not keys:
                method: Method = "all_labels"
                note = f"all {n} labels (the active head was trained on none of them)"
            else:
                method = "fresh_labels"
                note = f"the {n} labels added since the active head was trained"
            return Comparison(
                method,
                note,
                **known,
                labels=n,
                active_labels=n,
                new_spearman=metrics.spearman(y[unseen], new),
                active_spearman=metrics.spearman(y[unseen], ours),
            )
        why = (
            f"only {n} labels added since the active head was trained "
            f"(fewer than min_fresh_labels {min_fresh_labels})"
            if n < min_fresh_labels
            else f"the {n} labels added since the active head was trained are all equal"
        )
    else:
        why = "the active head's card does not list the labels it was trained on"
    theirs = _cv_spearman(card)
    if theirs is None:
        return Comparison("no_figures", f"{why}, and it has no CV figures: not compared", **known)
    return Comparison(
        "cross_validation",
        f"each head's cross-validated Spearman: {why}",
        **known,
        labels=len(y),
        active_labels=known["active_trained_on"] or 0,
        new_spearman=float(new_cv_spearman),
        active_spearman=theirs,
    )


def _pair_accuracies(cv_metrics: dict) -> tuple[float, float, int] | None:
    """The head's and ridge's accuracy on held-out human pairs, when both are defined, and
    the held-out (non-tie) pairs they were measured on."""
    try:
        head = float(cv_metrics["head"]["pairs"]["pair_accuracy"])
        ridge = float(cv_metrics["ridge"]["pairs"]["pair_accuracy"])
        pairs = int(cv_metrics["head"]["pairs"].get("pairs", 0))
    except (KeyError, TypeError):
        return None
    return None if math.isnan(head) or math.isnan(ridge) else (head, ridge, pairs)


def pair_tolerance(ridge_margin: float, pairs: int) -> float:
    """How far below ridge's held-out pair accuracy a head may be: the margin, widened to
    1 / sqrt(pairs), about two standard errors of an accuracy measured on that many pairs,
    so that a few dozen held-out pairs never refuse a head on noise alone."""
    return max(ridge_margin, 1 / math.sqrt(max(pairs, 1)))


def decide(
    cv_metrics: dict,
    min_spearman: float,
    ridge_margin: float,
    versus: Comparison | None = None,
    active_margin: float = 0.0,
) -> GateDecision:
    head = float(cv_metrics["head"]["overall"]["spearman"])
    ridge = float(cv_metrics["ridge"]["overall"]["spearman"])
    numbers = f"CV Spearman {head:.3f} (ridge {ridge:.3f})"
    if not head >= min_spearman:  # also catches nan
        reason = f"{numbers} is below the minimum {min_spearman:.3f}"
        passed = False
    elif head < ridge - ridge_margin:
        reason = f"{numbers}: worse than ridge by more than the margin {ridge_margin:.3f}"
        passed = False
    else:
        reason = f"{numbers}: at least {min_spearman:.3f}, and within {ridge_margin:.3f} of ridge"
        passed = True
    pairs = _pair_accuracies(cv_metrics)
    tolerance = pair_tolerance(ridge_margin, pairs[2]) if pairs else ridge_margin
    if passed and pairs is not None and pairs[0] < pairs[1] - tolerance:
        passed = False
        reason = (
            f"{numbers} passes, but its held-out pair accuracy {pairs[0]:.3f} is below "
            f"ridge's {pairs[1]:.3f} by more than {tolerance:.3f} (the margin, or "
            f"1/sqrt of the {pairs[2]} held-out pairs)"
        )
    if versus is not None:
        if versus.compared:
            figures = (
                f"Spearman {versus.new_spearman:.3f} against {versus.active_spearman:.3f} of "
                f"the active head {versus.active_version} ({versus.active_type}) on "
                f"{versus.note}"
            )
            holds = versus.holds(active_margin)
            if passed and not holds:
                passed = False
                reason = f"{numbers} passes, but it is worse than the active head: {figures}"
                if active_margin:
                    reason += f" (margin {active_margin:.3f})"
            else:
                if not holds:
                    verdict = "worse than the active head"
                elif versus.new_spearman >= versus.active_spearman or math.isnan(
                    versus.active_spearman
                ):
                    verdict = "at least as good as the active head"
                else:
                    verdict = f"within the margin {active_margin:.3f} of the active head"
                reason = f"{reason}; {verdict}: {figures}"
        else:
            reason = f"{reason}; {versus.note}"
    versus_dict = None if versus is None else asdict(versus)
    return GateDecision(
        passed, reason, head, ridge, min_spearman, ridge_margin, versus_dict, active_margin
    )


METHOD_TEXT: dict[str, str] = {
    "all_labels": "all labels",
    "fresh_labels": "labels since active",
    "cross_validation": "own CV",
    "no_active_head": "none (no active head)",
    "same_head": "none (same head)",
    "other_backbone": "none (other backbone)",
    "no_figures": "none (no figures)",
}


def gate_rows(record: dict) -> list[dict]:
    """The gate's table, both heads side by side, from a gate record: the new head's
    `version`, `head_type`, `labels` (count), and `gate` (a GateDecision as a dict)."""
    gate = record["gate"]
    versus = gate.get("versus") or {}
    method = versus.get("method", "no_active_head")
    compared = method in COMPARED
    passed = bool(gate["passed"])
    new_n = versus.get("labels", 0) if compared else record.get("labels", 0)
    new_figure = versus.get("new_spearman") if compared else gate["head_spearman"]
    rows = [
        {
            "head": "new",
            "version": record["version"],
            "type": record.get("head_type", "?"),
            "trained on": record.get("labels", "?"),
            "compared on": METHOD_TEXT.get(method, method),
            "n": new_n,
            "spearman": float(new_figure if new_figure is not None else math.nan),
            "verdict": "activated" if passed else "not activated",
        }
    ]
    if versus.get("active_version"):
        trained = versus.get("active_trained_on")
        rows.append(
            {
                "head": "active before",
                "version": versus["active_version"],
                "type": versus.get("active_type") or "?",
                "trained on": "?" if trained is None else trained,
                "compared on": METHOD_TEXT.get(method, method),
                "n": versus.get("active_labels", 0) if compared else 0,
                "spearman": float(versus.get("active_spearman", math.nan))
                if compared
                else math.nan,
                "verdict": "replaced" if passed and method != "same_head" else "stays active",
            }
        )
    return rows
