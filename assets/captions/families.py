"""The cut-points of a vocabulary's tag families, frozen per head, and the tags they give.

A family cut by percentiles (`cuts = "percentile"`) takes its cut-points as quantiles of its
column over the posts scored under the head: within each site and rating for `popularity`
(a net score means something else on each site, and explicit posts draw more votes), over
the calibration scope otherwise. They are worked out on the head's first export with the
family, stored in the catalog's `tag_calibrations` (one row per head and rule), and reused,
so a post keeps its tags as the catalog grows. A site and rating first seen later gets its
own cut-points then; the others never move. Absolute cut-points are the rule's own values,
stored the same way so that the drift check compares every family alike.

A value takes tag i when it lies above cut-point i and at or below cut-point i - 1: "> 95%"
as the model cards write it. Values tied at a cut-point stay together, below it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl

from assets.captions.vocabulary import Family

# The columns a family's rule can read, as the export's selection and family_values.sql
# give them.
VALUES: dict[str, pl.DataType] = {
    "site": pl.String,
    "rating": pl.String,
    "popularity": pl.Float64,
    "score": pl.Float64,
    "percentile": pl.Float64,
    "year": pl.Float64,
}
EVERYWHERE = "*"  # the site and rating of a family cut over its whole scope


def tag_column(family: Family) -> str:
    """The column that holds each post's tag of `family` in a frame being captioned."""
    return f"tag_{family.name}"


@dataclass(frozen=True)
class Group:
    """The cut-points of one site and rating (or of the whole scope), and the share of each
    tag there when they were made."""

    site: str
    rating: str
    thresholds: tuple[float, ...]
    shares: tuple[float, ...]
    images: int

    def record(self) -> dict:
        return {
            "site": self.site,
            "rating": self.rating,
            "thresholds": list(self.thresholds),
            "shares": list(self.shares),
            "images": self.images,
        }


@dataclass(frozen=True)
class Cuts:
    """A family's frozen cut-points under one head."""

    family: str
    rule: dict
    created_at: datetime
    groups: tuple[Group, ...] = ()

    @property
    def key(self) -> str:
        return rule_key(self.rule)

    def record(self) -> dict:
        return {
            "family": self.family,
            "rule": self.rule,
            "created_at": self.created_at.isoformat(),
            "groups": [g.record() for g in self.groups],
        }

    @classmethod
    def from_record(cls, record: dict) -> Cuts:
        return cls(
            family=record["family"],
            rule=record["rule"],
            created_at=datetime.fromisoformat(record["created_at"]),
            groups=tuple(
                Group(
                    g["site"],
                    g["rating"],
                    tuple(g["thresholds"]),
                    tuple(g["shares"]),
                    int(g["images"]),
                )
                for g in record["groups"]
            ),
        )


def rule_of(family: Family, scope: dict) -> dict:
    """What a family's cut-points depend on: its rule, and the scope they are taken over."""
    over = "each site and rating" if family.grouped else scope
    return {**family.rule(), "over": over if family.cuts == "percentile" else "absolute"}


def rule_key(rule: dict) -> str:
    return hashlib.sha256(json.dumps(rule, sort_keys=True).encode()).hexdigest()[:16]


def tag_index(values: np.ndarray, thresholds: Iterable[float]) -> np.ndarray:
    """Each value's tag: the number of cut-points at or above it (cut-points best first)."""
    rising = np.asarray(list(thresholds), np.float64)[::-1]
    return len(rising) - np.searchsorted(rising, values, side="left")


def _shares(values: np.ndarray, thresholds: tuple[float, ...]) -> tuple[float, ...]:
    counts = np.bincount(tag_index(values, thresholds), minlength=len(thresholds) + 1)
    total = counts.sum()
    return tuple(float(c / total) if total else 0.0 for c in counts)


def _in_scope(values: pl.DataFrame, family: Family, scope: dict) -> pl.DataFrame:
    """The posts a family's cut-points are taken over, with the group each is cut in."""
    # Only the columns the rule reads: an export's rows carry their tag lists too.
    frame = values.select("site", "rating", family.column).drop_nulls(family.column)
    if family.grouped:
        return frame
    if scope.get("sites"):
        frame = frame.filter(pl.col("site").is_in(scope["sites"]))
    if scope.get("ratings"):
        frame = frame.filter(pl.col("rating").is_in(scope["ratings"]))
    return frame.with_columns(site=pl.lit(EVERYWHERE), rating=pl.lit(EVERYWHERE))


def freeze(
    values: pl.DataFrame,
    family: Family,
    scope: dict,
    now: datetime,
    known: Cuts | None = None,
) -> Cuts:
    """The family's cut-points over `values` (VALUES' columns): those of `known` kept as
    they are, groups it lacks worked out now. A group with no value gets none (its posts
    get no tag of the family until it has some)."""
    rule = rule_of(family, scope)
    kept = {(g.site, g.rating): g for g in (known.groups if known else ())}
    frame = _in_scope(values, family, scope)
    # One pass per site and rating (at most a few dozen), each vectorised.
    for (site, rating), part in frame.group_by("site", "rating"):
        if (site, rating) in kept:
            continue
        column = part[family.column].to_numpy().astype(np.float64)
        if family.cuts == "percentile":
            thresholds = tuple(float(t) for t in np.quantile(column, family.above))
        else:
            thresholds = family.above
        kept[(site, rating)] = Group(
            site, rating, thresholds, _shares(column, thresholds), len(column)
        )
    groups = tuple(kept[k] for k in sorted(kept))
    created = known.created_at if known else now
    return Cuts(family.name, rule, created, groups)


def tags(frame: pl.DataFrame, family: Family, cuts: Cuts) -> pl.Series:
    """Each row's tag of `family` (null: no value, no cut-points for its group, or an
    empty tag), from `frame`'s site, rating and the family's column."""
    values = frame[family.column].cast(pl.Float64).to_numpy()
    index = np.full(frame.height, -1, np.int64)
    known = ~np.isnan(values)
    for group in cuts.groups:
        rows = known.copy()
        if group.site != EVERYWHERE:
            rows &= (frame["site"] == group.site).fill_null(False).to_numpy()
            rows &= (frame["rating"] == group.rating).fill_null(False).to_numpy()
        index[rows] = tag_index(values[rows], group.thresholds)
    names = {i: (t or None) for i, t in enumerate(family.tags)}
    return pl.Series(tag_column(family), index).replace_strict(
        names, default=None, return_dtype=pl.String
    )


def with_tags(
    frame: pl.DataFrame, families: Iterable[Family], cuts: dict[str, Cuts]
) -> pl.DataFrame:
    """`frame` with each family's tag column (cuts keyed by family name)."""
    columns = [tags(frame, f, cuts[f.name]) for f in families]
    return frame.with_columns(columns) if columns else frame


DRIFT = {
    "family": pl.String,
    "site": pl.String,
    "rating": pl.String,
    "tag": pl.String,
    "then": pl.Float64,
    "now": pl.Float64,
}


def drift(values: pl.DataFrame, family: Family, cuts: Cuts, scope: dict) -> pl.DataFrame:
    """Each tag's share of its group then (when the cut-points were made) and now, with
    their difference (DRIFT's columns and `difference`)."""
    frame = _in_scope(values, family, scope)
    rows = []
    for group in cuts.groups:
        part = frame.filter((pl.col("site") == group.site) & (pl.col("rating") == group.rating))
        now = _shares(part[family.column].to_numpy().astype(np.float64), group.thresholds)
        rows += [
            (family.name, group.site, group.rating, tag or "(none)", group.shares[i], now[i])
            for i, tag in enumerate(family.tags)
        ]
    frame = pl.DataFrame(rows, schema=DRIFT, orient="row")
    return frame.with_columns(difference=(pl.col("now") - pl.col("then")).abs())
