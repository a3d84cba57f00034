"""Great Expectations 1.x suites, run from Dagster asset checks.

dagster-ge does not support GX 1.x, so checks call GX here: an ephemeral context, a pandas
data source, one batch per validation. Big tables are never copied into pandas whole: a check
validates a bounded sample of rows for row-level expectations, and a one-row frame of exact
aggregates (null counts, duplicate counts, ...) computed by polars for table-level ones.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import polars as pl

SAMPLE_ROWS = 100_000


@dataclass
class SuiteOutcome:
    """The verdict of one suite, with every expectation's result in plain values."""

    suite: str
    success: bool
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [r for r in self.results if not r["success"]]

    def describe(self) -> str:
        if self.success:
            return f"{self.suite}: all {len(self.results)} expectations met"
        parts = [f"{r['expectation']}({r['column']}): {r['observed']}" for r in self.failures]
        return f"{self.suite}: {len(self.failures)} of {len(self.results)} failed: " + "; ".join(
            parts
        )


@functools.cache
def _batch_definition():
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas("scoretag").add_dataframe_asset("frame")
    return context, asset.add_batch_definition_whole_dataframe("whole")


def _observed(result: dict) -> Any:
    if "observed_value" in result:
        return result["observed_value"]
    examples = result.get("partial_unexpected_list", [])[:3]
    return {"unexpected": result.get("unexpected_count"), "examples": examples}


def validate(frame: pl.DataFrame, expectations: Sequence[Any], suite: str) -> SuiteOutcome:
    """Run GX expectations (instances of `gx.expectations.*`) over a polars frame."""
    import great_expectations as gx

    context, batch_definition = _batch_definition()
    name = f"{suite}-{id(frame)}"
    gx_suite = context.suites.add(gx.ExpectationSuite(name, expectations=list(expectations)))
    try:
        batch = batch_definition.get_batch(batch_parameters={"dataframe": frame.to_pandas()})
        validation = batch.validate(gx_suite)
    finally:
        context.suites.delete(name)
    results = [
        {
            "expectation": r.expectation_config.type,
            "column": r.expectation_config.kwargs.get("column")
            or ",".join(r.expectation_config.kwargs.get("column_list", [])),
            "success": bool(r.success),
            "observed": _observed(r.result),
        }
        for r in validation.results
    ]
    return SuiteOutcome(suite, bool(validation.success), results)


def sample(frame: pl.LazyFrame, rows: int = SAMPLE_ROWS, seed: int = 0) -> pl.DataFrame:
    """All rows when there are few, else a seeded random sample of `rows`."""
    data = frame.collect()
    return data if data.height <= rows else data.sample(rows, seed=seed)


def check_result(
    outcomes: Sequence[SuiteOutcome],
    metadata: dict[str, Any] | None = None,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
    **kwargs: Any,
) -> dg.AssetCheckResult:
    """One Dagster check result from one or more suites, with what each expectation saw."""
    passed = all(o.success for o in outcomes)
    table = "\n".join(
        f"| {o.suite} | {r['expectation']} | {r['column'] or ''} | "
        f"{'pass' if r['success'] else '**FAIL**'} | {str(r['observed'])[:80]} |"
        for o in outcomes
        for r in o.results
    )
    details = "| suite | expectation | column | result | observed |\n|---|---|---|---|---|\n"
    return dg.AssetCheckResult(
        passed=passed,
        severity=severity,
        description="; ".join(o.describe() for o in outcomes),
        metadata={"expectations": dg.MetadataValue.md(details + table), **(metadata or {})},
        **kwargs,
    )
