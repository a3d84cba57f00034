"""A head's cut-points in the catalog: worked out once per head (on its first export, or by
`scoretag calibrate`), stored as the head's rows of `calibrations`, then reused as they are,
so a post keeps its tags when the catalog grows. Only `scoretag calibrate --force` replaces
them.

How they were made (policy, cut-points, scope, and each bucket's share of the scope then) is
kept beside the export data, in `calibrations/<head>.json`: the manifest repeats it, and the
drift check compares the shares with today's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from assets.captions.buckets import (
    BUCKETS,
    Calibration,
    bucket_of,
    shares,
    starts_for,
    starts_from_rows,
)
from assets.catalog.statements import statement
from orchestration.atomic import write_bytes
from orchestration.settings import DECILE_CUT_POINTS


@dataclass(frozen=True)
class Policy:
    """How a head is calibrated: policy, cut-points, and the scope quantiles are taken over
    (empty sites or ratings: all of them)."""

    name: str = "quantile"
    cut_points: tuple[float, ...] = DECILE_CUT_POINTS
    sites: tuple[str, ...] = ()
    ratings: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings, name: str | None = None) -> Policy:
        return cls(
            name=name or settings.policy,
            cut_points=tuple(settings.cut_points),
            sites=tuple(settings.calibration_sites),
            ratings=tuple(settings.calibration_ratings),
        )

    def scope(self) -> dict:
        return {"sites": sorted(self.sites), "ratings": sorted(self.ratings)}

    def same_as(self, calibration: Calibration) -> bool:
        return (
            calibration.policy == self.name
            and np.allclose(calibration.cut_points, self.cut_points)
            and calibration.scope == self.scope()
        )


def prepare(con: duckdb.DuckDBPyConnection) -> None:
    """Create the stage's table macros on this connection."""
    con.execute(statement("captions/macros"))


def active_head(con: duckdb.DuckDBPyConnection) -> str | None:
    row = con.execute(statement("captions/active_head")).fetchone()
    return row[0] if row else None


def _scope_params(head: str, scope: dict) -> dict:
    return {"head": head, "sites": list(scope["sites"]), "ratings": list(scope["ratings"])}


def compute(
    con: duckdb.DuckDBPyConnection, head: str, policy: Policy, now: datetime
) -> Calibration:
    """The head's cut-points under `policy`, with the scope's bucket shares (not stored)."""
    scores = con.execute(
        statement("captions/scope_scores"), _scope_params(head, policy.scope())
    ).fetchnumpy()["score"]
    scores = np.asarray(scores, np.float64)
    starts = starts_for(policy.name, policy.cut_points, scores)
    return Calibration(
        head_version=head,
        starts=tuple(float(s) for s in starts),
        created_at=now,
        policy=policy.name,
        cut_points=tuple(policy.cut_points),
        scope=policy.scope(),
        images=len(scores),
        shares=tuple(shares(bucket_of(scores, starts))),
    )


def store(con: duckdb.DuckDBPyConnection, calibration: Calibration, record: Path) -> None:
    """Replace the head's rows of `calibrations` (one transaction), and its record."""
    write_bytes(record, (json.dumps(calibration.record(), indent=2) + "\n").encode())
    params = {"head": calibration.head_version}
    con.execute("BEGIN")
    try:
        con.execute(statement("captions/delete_calibration"), params)
        con.register("new_calibration", calibration.rows().to_arrow())
        try:
            con.execute(
                statement("captions/insert_calibration"),
                {**params, "created_at": calibration.created_at},
            )
        finally:
            con.unregister("new_calibration")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def load(con: duckdb.DuckDBPyConnection, head: str, record: Path) -> Calibration | None:
    """The head's stored cut-points, or None. How they were made comes from the record when
    it describes these very rows (else the policy reads `unknown`)."""
    rows = con.execute(statement("captions/calibration"), {"head": head}).pl()
    if rows.height == 0:
        return None
    starts = starts_from_rows(rows)
    created = rows["created_at"].max()
    known = from_record(record, head)
    if known is None or not np.allclose(known.starts, starts):
        return Calibration(head_version=head, starts=starts, created_at=created)
    return replace(known, created_at=created)


def from_record(record: Path, head: str) -> Calibration | None:
    """The head's cut-points as its record keeps them beside the export (written with every
    stored calibration), without opening the catalog; None when there is no record of it."""
    known = json.loads(record.read_text()) if record.is_file() else {}
    if known.get("head_version") != head:
        return None
    return Calibration(
        head_version=head,
        starts=tuple(float(s) for s in known["starts"]),
        created_at=datetime.fromisoformat(known["created_at"]),
        policy=known["policy"],
        cut_points=tuple(known["cut_points"]),
        scope=known["scope"],
        images=known["images"],
        shares=tuple(known["shares"]),
    )


def policy_warning(calibration: Calibration, policy: Policy) -> str | None:
    """What to say when the stored cut-points were made otherwise than the settings ask:
    they are still used (tags must not move), until `scoretag calibrate --force`."""
    if calibration.policy == "unknown" or policy.same_as(calibration):
        return None
    return (
        f"head {calibration.head_version} keeps the cut-points it was calibrated with (policy "
        f"{calibration.policy}, cut points {list(calibration.cut_points)}, scope "
        f"{calibration.scope}); the settings ask for {policy.name} (cut points "
        f"{list(policy.cut_points)}, scope {policy.scope()}): `scoretag calibrate --force` "
        "applies them (posts may change bucket)"
    )


def drift(con: duckdb.DuckDBPyConnection, calibration: Calibration) -> pl.DataFrame:
    """Each bucket's share of the calibration scope then and now."""
    counts = con.execute(
        statement("captions/scope_buckets"),
        _scope_params(calibration.head_version, calibration.scope or {"sites": [], "ratings": []}),
    ).pl()
    found = dict(zip(counts["bucket"].to_list(), counts["images"].to_list(), strict=True))
    total = sum(found.values())
    now = [found.get(b, 0) / total if total else 0.0 for b in BUCKETS]
    then = list(calibration.shares) or [float("nan")] * len(BUCKETS)
    return pl.DataFrame({"bucket": list(BUCKETS), "then": then, "now": now}).with_columns(
        difference=(pl.col("now") - pl.col("then")).abs()
    )
