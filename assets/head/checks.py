"""The quality gate, as the blocking check on aesthetic_head: a head that fails it is not
active, and nothing downstream (the catalog's rescoring) runs on it."""

import json

import dagster as dg

from assets.head.assets import aesthetic_head
from assets.head.gate import COMPARED
from assets.head.paths import last_training_path, registry
from orchestration.resources import ScoretagResource


@dg.asset_check(asset=aesthetic_head, blocking=True)
def aesthetic_head_quality_gate(scoretag: ScoretagResource) -> dg.AssetCheckResult:
    """The head just trained has CV Spearman of at least [head] min_spearman, is not worse
    than ridge by more than [head] ridge_margin (in Spearman, and in accuracy on held-out
    human pairs when there are any), and is at least as good as the active head
    on labels neither was trained on (less [head] active_margin); otherwise the previous head
    stays active."""
    layout = scoretag.load().layout
    record = json.loads(last_training_path(layout).read_text())
    gate = record["gate"]
    active = registry(layout).active_version()
    kept = "" if gate["passed"] else f"; the active head stays {record['previous'] or 'none'}"
    return dg.AssetCheckResult(
        passed=gate["passed"],
        description=f"head {record['version']}: {gate['reason']}{kept}",
        metadata={
            "version": record["version"],
            "active_version": active or "none",
            "head_spearman": gate["head_spearman"],
            "ridge_spearman": gate["ridge_spearman"],
            "min_spearman": gate["min_spearman"],
            "ridge_margin": gate["ridge_margin"],
            **versus_metadata(gate.get("versus")),
        },
    )


def versus_metadata(versus: dict | None) -> dict:
    """The comparison with the head active before (records written before it was made have
    none)."""
    if not versus:
        return {}
    metadata = {
        "compared_with": versus.get("active_version") or "none",
        "comparison": versus["method"],
        "labels_compared": versus.get("labels", 0),
    }
    if versus["method"] in COMPARED:
        metadata["new_spearman"] = float(versus["new_spearman"])
        metadata["active_spearman"] = float(versus["active_spearman"])
    return metadata
