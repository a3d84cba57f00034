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
from assets.captions.families import Cuts, freeze, rule_key, rule_of
from assets.captions.families import drift as tag_drift
from assets.captions.families import tags as tag_series
from assets.captions.vocabulary import Vocabulary
from assets.catalog.statements import statement
from orchestration.atomic import write_bytes
from orchestration.settings import DECILE_CUT_POINTS, RATINGS


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


def family_scope(calibration: Calibration, policy: Policy) -> dict:
    """The scope the head's tag families are cut over: the one its buckets were calibrated
    over (kept with them, so a change of settings moves no tag until `calibrate --force`),
    or the policy's where how the buckets were made is not known."""
    return calibration.scope or policy.scope()


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


class CalibrationNeeded(RuntimeError):
    """The active head has no cut-points yet (its buckets', or a vocabulary family's), and the
    catalog was opened read-only."""


def _has_tag_calibrations(con: duckdb.DuckDBPyConnection) -> bool:
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'tag_calibrations'"
    ).fetchone()
    return bool(found and found[0])


def stored_cuts(con: duckdb.DuckDBPyConnection, head: str, keys: list[str]) -> dict[str, Cuts]:
    """The head's frozen cut-points of the given rules, by rule key."""
    if not keys or not _has_tag_calibrations(con):
        return {}
    rows = con.execute(statement("captions/tag_calibrations"), {"head": head, "rules": keys})
    return {rule: Cuts.from_record(json.loads(record)) for rule, record in rows.fetchall()}


def forget_cuts(con: duckdb.DuckDBPyConnection, head: str) -> None:
    """Drop every frozen family cut-point of the head: the next export makes them again."""
    if _has_tag_calibrations(con):
        con.execute(statement("captions/delete_tag_calibrations"), {"head": head, "rules": []})


def _store_cuts(con: duckdb.DuckDBPyConnection, head: str, cuts: list[Cuts]) -> None:
    con.execute(statement("schema/004_tag_calibrations"))
    con.execute("BEGIN")
    try:
        for c in cuts:
            params = {"head": head, "rules": [c.key]}
            con.execute(statement("captions/delete_tag_calibrations"), params)
            con.execute(
                statement("captions/insert_tag_calibration"),
                {
                    "head": head,
                    "rule": c.key,
                    "family": c.family,
                    "record": json.dumps(c.record()),
                    "created_at": c.created_at,
                },
            )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def family_values(con: duckdb.DuckDBPyConnection, head: str) -> pl.DataFrame:
    """What a vocabulary's families are cut over: the live posts scored under `head`."""
    return con.execute(
        statement("captions/family_values"), {"head": head, "ratings": list(RATINGS)}
    ).pl()


def _groups_now(con: duckdb.DuckDBPyConnection, head: str) -> set[tuple[str, str]]:
    params = {"head": head, "ratings": list(RATINGS)}
    rows = con.execute(statement("captions/value_groups"), params).fetchall()
    return {(site, rating) for site, rating in rows}


def family_cuts(
    con: duckdb.DuckDBPyConnection,
    head: str,
    vocabulary: Vocabulary,
    scope: dict,
    writable: bool,
    now: datetime,
) -> dict[str, Cuts]:
    """The frozen cut-points of each family of `vocabulary` cut by value, by family name:
    those stored under the head, and (writable) the ones it lacks made and stored now, with
    any site and rating first seen since added (`forget_cuts` first makes them all again)."""
    families = vocabulary.cut_families()
    if not families:
        return {}
    keys = {f.name: rule_key(rule_of(f, scope)) for f in families}
    stored = stored_cuts(con, head, list(keys.values()))
    found = {f.name: stored[keys[f.name]] for f in families if keys[f.name] in stored}
    lacking = [f.name for f in families if f.name not in found]
    grouped = [f for f in families if f.grouped]
    if not lacking and grouped:  # a site and rating the stored cut-points do not know
        seen = _groups_now(con, head)
        lacking = [
            f.name for f in grouped if seen - {(g.site, g.rating) for g in found[f.name].groups}
        ]
    if not lacking:
        return found
    if not writable:
        raise CalibrationNeeded(f"{head} (tag families {', '.join(lacking)})")
    values = family_values(con, head)
    made = {f.name: freeze(values, f, scope, now, found.get(f.name)) for f in families}
    _store_cuts(con, head, [c for name, c in made.items() if c != found.get(name)])
    return made


def family_reports(
    con: duckdb.DuckDBPyConnection, head: str, vocabularies: list[Vocabulary], scope: dict
) -> dict[str, tuple[pl.DataFrame, dict[str, dict[str, int]]]]:
    """For each vocabulary (by name) whose families have stored cut-points under the head:
    their tags' shares then and now per site and rating (families.DRIFT and `difference`),
    and how many posts carry each tag now (by family, best tag first). The catalog's values
    are read once, for all of them."""
    values = None
    reports = {}
    for vocabulary in vocabularies:
        families = vocabulary.cut_families()
        keys = {f.name: rule_key(rule_of(f, scope)) for f in families}
        stored = stored_cuts(con, head, list(keys.values()))
        present = [(f, stored[keys[f.name]]) for f in families if keys[f.name] in stored]
        if not present:
            continue
        values = family_values(con, head) if values is None else values
        shares = pl.concat([tag_drift(values, f, cuts, scope) for f, cuts in present])
        counts = {}
        for f, cuts in present:
            found = tag_series(values, f, cuts).fill_null("(none)").value_counts()
            found = dict(zip(found[:, 0].to_list(), found["count"].to_list(), strict=True))
            counts[f.name] = {t: found.get(t, 0) for t in [*f.words(), "(none)"]}
        reports[vocabulary.name] = (shares, counts)
    return reports
