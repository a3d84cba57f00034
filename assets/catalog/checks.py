"""Checks on scored_catalog: a GX suite over the catalog's aggregates (a catalog of millions
is judged by counts computed in DuckDB, not row by row in pandas), and the active head's
gate."""

import json

import dagster as dg

from assets.catalog import lock
from assets.catalog.assets import scored_catalog
from assets.catalog.statements import statement
from assets.embeddings.assets import store_for
from assets.head.paths import registry
from orchestration import quality
from orchestration.pools import DUCKDB
from orchestration.resources import BackboneResource, ScoretagResource

ZERO = (
    "embedded_posts_unscored",
    "scores_out_of_range",
    "duplicate_scores",
    "percentile_inversions",
    "percentiles_invalid",
)


# In the duckdb pool: DuckDB refuses even a reading connection while another process writes.
@dg.asset_check(asset=scored_catalog, blocking=True, pool=DUCKDB)
def scored_catalog_suite(
    scoretag: ScoretagResource, backbone: BackboneResource
) -> dg.AssetCheckResult:
    """Every post whose image is embedded has a score under the active head; scores in
    [0, 1]; no (post, head) scored twice; percentiles in [0, 1] and in the scores' order."""
    import great_expectations as gx

    profile = scoretag.load()
    layout = profile.layout
    active = registry(layout).active_version()
    if active is None:
        return dg.AssetCheckResult(passed=True, description="no active head: nothing scored")
    store = store_for(layout, backbone)
    if not store.shards():  # read_parquet refuses a glob that matches nothing
        return dg.AssetCheckResult(passed=True, description="no embeddings yet: nothing to score")
    timeout_s = profile.settings.catalog.lock_timeout_s
    with lock.connect(layout.catalog, read_only=True, timeout_s=timeout_s) as con:
        shards = store.shards_for(con)
        aggregates = con.execute(
            statement("catalog/check_aggregates"), {"head": active, "shards": shards}
        ).pl()
    e = gx.expectations
    outcome = quality.validate(
        aggregates,
        [e.ExpectColumnValuesToBeBetween(column=c, min_value=0, max_value=0) for c in ZERO],
        "catalog",
    )
    return quality.check_result([outcome], metadata=aggregates.to_dicts()[0])


@dg.asset_check(asset=scored_catalog)
def scored_catalog_active_head_gated(scoretag: ScoretagResource) -> dg.AssetCheckResult:
    """The active head passed its quality gate; one activated by hand is flagged (WARN)."""
    history = registry(scoretag.load().layout).history()
    if not history:
        return dg.AssetCheckResult(passed=True, description="no head is active")
    latest = history[-1]
    passed, description = gate_verdict(latest)
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={"activation": json.dumps(latest)},
    )


def gate_verdict(activation: dict) -> tuple[bool, str]:
    """Whether the activation (an entry of the registry's history) came from the gate."""
    by = activation.get("by")
    head = f"head {activation['version']}"
    if by == "gate":
        return True, f"{head} {activation['reason']}"
    if by == "hand":
        return False, f"{head} was activated by hand, not by the quality gate"
    return False, f"{head}: the registry does not say who activated it ({activation['reason']})"
