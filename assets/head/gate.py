"""The quality gate: a new head replaces the active one only when it is good enough on its
own (cross-validated Spearman at least a minimum) and not worse than ridge, the baseline
that is always computed, by more than a margin."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    reason: str
    head_spearman: float
    ridge_spearman: float
    min_spearman: float
    ridge_margin: float

    def to_dict(self) -> dict:
        return asdict(self)


def decide(cv_metrics: dict, min_spearman: float, ridge_margin: float) -> GateDecision:
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
    return GateDecision(passed, reason, head, ridge, min_spearman, ridge_margin)
