"""Sets side by side under one head: each set's figures, and each difference from the first
set with its bootstrap confidence interval (see assets/evaluation/stats.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from assets.evaluation import stats
from assets.evaluation.scoring import SetScores
from orchestration.plots import histogram_png

SHOWN = ("images", "score_mean", "score_p10", "score_p50", "score_p90", "good_rate")
SHOWN_MORE = ("clip_score", "diversity", "groups")


@dataclass(frozen=True)
class Options:
    good_bucket: int = 7
    resamples: int = 2000
    confidence: float = 0.95
    seed: int = 0


@dataclass
class Comparison:
    """Sets under one head: the first is the baseline the others are compared with."""

    head: str
    sets: list[SetScores]
    summaries: dict[str, dict]
    differences: pl.DataFrame  # stats.compare rows, with `base` and `other` set names

    @property
    def undecided(self) -> bool:
        """No difference's interval excludes zero."""
        return self.differences.height > 0 and stats.undecided(self.differences)

    def table(self) -> list[dict]:
        """One row per figure, one column per set."""
        names = [s.name for s in self.sets]
        rows = []
        for figure in (*SHOWN, *SHOWN_MORE):
            values = {n: self.summaries[n].get(figure) for n in names}
            if any(v is not None for v in values.values()):
                rows.append({"figure": figure, **values})
        return rows

    def histogram_png(self) -> bytes:
        """The sets' score distributions overlaid, each normalised to its size."""
        return histogram_png(
            {s.name: s.rows["score"].to_numpy() for s in self.sets},
            f"aesthetic score under head {self.head[:12]}",
            "score",
            bins=30,
            value_range=(0.0, 1.0),
            ylabel="share of images",
            density=True,
        )

    def to_json(self) -> dict:
        return {
            "head": self.head,
            "baseline": self.sets[0].name if self.sets else None,
            "sets": self.summaries,
            "differences": self.differences.to_dicts(),
            "undecided": self.undecided,
        }


DIFFERENCE = (
    "metric", "base", "other", "difference", "low", "high", "paired", "n_base", "n_other",
    "n_pairs", "excludes_zero",
)  # fmt: skip
EMPTY = {
    "base_set": pl.String,
    "other_set": pl.String,
    "metric": pl.String,
    **dict.fromkeys(("base", "other", "difference", "low", "high"), pl.Float64),
    "paired": pl.Boolean,
    **dict.fromkeys(("n_base", "n_other", "n_pairs"), pl.Int64),
    "excludes_zero": pl.Boolean,
}


def compare_sets(
    sets: Sequence[SetScores], options: Options, base_first: bool = True
) -> Comparison:
    """`sets` (scored by the same head) side by side. Each difference is other minus base:
    with `base_first` the first set is the base of every other (`scoretag evaluate
    --compare`); else the first set is compared with each of the others as its base (the
    asset: a new set against those evaluated before it). Sets with no scored image are
    shown but not compared."""
    heads = {s.head for s in sets}
    if len(heads) > 1:
        raise ValueError(f"sets scored by different heads cannot be compared: {sorted(heads)}")
    summaries = {s.name: stats.set_summary(s.rows, s.vectors, options.good_bucket) for s in sets}
    first = sets[0]
    pairs = [(first, s) if base_first else (s, first) for s in sets[1:]]
    frames = [
        stats.compare(
            base.rows,
            base.vectors,
            other.rows,
            other.vectors,
            good_bucket=options.good_bucket,
            resamples=options.resamples,
            confidence=options.confidence,
            seed=options.seed,
        ).select(
            pl.lit(base.name).alias("base_set"), pl.lit(other.name).alias("other_set"), *DIFFERENCE
        )
        for base, other in pairs
        if base.rows.height and other.rows.height
    ]
    differences = pl.concat(frames) if frames else pl.DataFrame(schema=EMPTY)
    return Comparison(next(iter(heads), ""), list(sets), summaries, differences)


def difference_rows(comparison: Comparison) -> list[dict]:
    """The differences as a table a person reads: other - base, and the interval."""
    if comparison.differences.height == 0:
        return []
    return (
        comparison.differences.select(
            "base_set",
            "other_set",
            "metric",
            "base",
            "other",
            "difference",
            interval=pl.format("{} .. {}", pl.col("low").round(4), pl.col("high").round(4)),
            paired=pl.when("paired").then(pl.format("{}", "n_pairs")).otherwise(pl.lit("no")),
            real=pl.when("excludes_zero").then(pl.lit("yes")).otherwise(pl.lit("not shown")),
        )
        .with_columns(pl.col("base", "other", "difference").round(4))
        .to_dicts()
    )
