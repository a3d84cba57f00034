"""What the pair judgments say about the labelers: pace, agreement on shared pairs,
self-consistency on hidden repeats, and position bias.

Every function takes the store's pair events as `LabelStore.pair_events()` returns them and
honours undos. A pair is unordered: a judgment's *winner* is the post it chose (or `tie`),
whichever side that post was shown on, so judgments of one pair in either order compare.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import polars as pl

from assets.labels.store import active_pairs

Z95 = 1.959963984540054


def choices(events: pl.DataFrame) -> pl.DataFrame:
    """Standing choices (no skips, nothing undone) in order, with `pair` (the two keys
    sorted, joined by `|`) and `winner` (the chosen post_key, or `tie`)."""
    kept = active_pairs(events).filter(pl.col("kind") == "choice").sort("id")
    low = pl.min_horizontal("left_key", "right_key")
    high = pl.max_horizontal("left_key", "right_key")
    return kept.with_columns(
        pair=pl.concat_str(low, pl.lit("|"), high),
        winner=pl.when(pl.col("choice") == "left")
        .then(pl.col("left_key"))
        .when(pl.col("choice") == "right")
        .then(pl.col("right_key"))
        .otherwise(pl.lit("tie")),
    )


def latest(events: pl.DataFrame) -> pl.DataFrame:
    """Each labeler's latest choice of each pair (what manual_labels keeps)."""
    return choices(events).group_by("labeler", "pair", maintain_order=True).last()


def per_labeler(events: pl.DataFrame, now: datetime | None = None) -> pl.DataFrame:
    """Per labeler: choices (repeats included), pairs, repeats, ties, skips, undos, per_hour
    (their recent pace, as labels_per_hour; 0 without `now`) and last_at."""
    kept = active_pairs(events)
    made = choices(events)
    per = (
        made.group_by("labeler")
        .agg(
            choices=pl.len(),
            pairs=pl.col("pair").n_unique(),
            ties=(pl.col("choice") == "tie").sum(),
            last_at=pl.col("created_at").max(),
        )
        .join(
            kept.filter(pl.col("kind") == "skip").group_by("labeler").agg(skips=pl.len()),
            on="labeler",
            how="full",
            coalesce=True,
        )
        .join(
            events.filter(pl.col("kind") == "undo").group_by("labeler").agg(undos=pl.len()),
            on="labeler",
            how="full",
            coalesce=True,
        )
    )
    counts = ("choices", "pairs", "ties", "skips", "undos")
    per = per.with_columns(pl.col(*counts).fill_null(0).cast(pl.Int64)).with_columns(
        repeats=pl.col("choices") - pl.col("pairs"),
        per_hour=pl.col("labeler").map_elements(
            lambda who: round(choices_per_hour(made, who, now), 1) if now else 0.0,
            return_dtype=pl.Float64,
        ),
    )
    columns = ("labeler", "choices", "pairs", "repeats", "ties", "skips", "undos", "per_hour")
    return per.select(*columns, "last_at").sort("labeler")


def choices_per_hour(
    made: pl.DataFrame, labeler: str, now: datetime, window: timedelta = timedelta(minutes=15)
) -> float:
    """The labeler's recent pace: choices in the last `window` over the time since the first
    of them (at least a minute)."""
    times = map(datetime.fromisoformat, made.filter(labeler=labeler)["created_at"].to_list())
    recent = [t for t in times if now - t <= window]
    if not recent:
        return 0.0
    return len(recent) * 3600.0 / max((now - min(recent)).total_seconds(), 60.0)


def hourly(events: pl.DataFrame) -> pl.DataFrame:
    """Choices per labeler per clock hour (UTC): labeler, hour, choices."""
    made = choices(events).with_columns(hour=pl.col("created_at").str.slice(0, 13) + ":00")
    schema = {"labeler": pl.String, "hour": pl.String, "choices": pl.Int64}
    if made.is_empty():
        return pl.DataFrame(schema=schema)
    counts = made.group_by("labeler", "hour").agg(choices=pl.len())
    return counts.select([pl.col(c).cast(t) for c, t in schema.items()]).sort("labeler", "hour")


def agreement(events: pl.DataFrame) -> pl.DataFrame:
    """Per pair of labelers (labeler_a < labeler_b), on the pairs both judged (latest
    choices): shared, same (same winner, or both tie), same_share, decisive (both chose a
    post), decisive_same_share (of those, the share with the same winner)."""
    given = latest(events).select("pair", "labeler", "winner")
    joined = (
        given.join(given, on="pair", suffix="_b")
        .filter(pl.col("labeler") < pl.col("labeler_b"))
        .rename({"labeler": "labeler_a"})
    )
    decisive = (pl.col("winner") != "tie") & (pl.col("winner_b") != "tie")
    same = pl.col("winner") == pl.col("winner_b")
    table = joined.group_by("labeler_a", "labeler_b").agg(
        shared=pl.len().cast(pl.Int64),
        same=same.sum().cast(pl.Int64),
        decisive=decisive.sum().cast(pl.Int64),
        decisive_same=(decisive & same).sum().cast(pl.Int64),
    )
    columns = ("labeler_a", "labeler_b", "shared", "same", "same_share", "decisive")
    return (
        table.with_columns(
            same_share=pl.col("same") / pl.col("shared"),
            decisive_same_share=_ratio(pl.col("decisive_same"), pl.col("decisive")),
        )
        .select(*columns, "decisive_same_share")
        .sort("labeler_a", "labeler_b")
    )


def self_consistency(events: pl.DataFrame) -> pl.DataFrame:
    """Per labeler, their hidden repeats against their first choice of the same pair:
    repeats, swapped (repeats shown in the other order than the first time), same (the same
    winner, or tie again), same_share (null without repeats)."""
    made = choices(events).with_columns(
        first_winner=pl.col("winner").first().over("labeler", "pair", order_by="id"),
        first_left=pl.col("left_key").first().over("labeler", "pair", order_by="id"),
        nth=pl.int_range(pl.len()).over("labeler", "pair", order_by="id"),
    )
    repeat = pl.col("nth") > 0
    return (
        made.group_by("labeler")
        .agg(
            repeats=repeat.sum().cast(pl.Int64),
            swapped=(repeat & (pl.col("left_key") != pl.col("first_left"))).sum().cast(pl.Int64),
            same=(repeat & (pl.col("winner") == pl.col("first_winner"))).sum().cast(pl.Int64),
        )
        .with_columns(same_share=_ratio(pl.col("same"), pl.col("repeats")))
        .sort("labeler")
    )


def position_bias(events: pl.DataFrame) -> pl.DataFrame:
    """Per labeler and for everyone (labeler `all`): of the non-tie choices (every standing
    one, repeats included), how many went left, left_share, and its 95% Wilson interval
    (ci_low, ci_high). An interval without 0.5 is a position bias (`biased`)."""
    made = choices(events).filter(pl.col("choice") != "tie")
    counts = made.group_by("labeler").agg(
        decisive=pl.len(), left=(pl.col("choice") == "left").sum()
    )
    rows = sorted(counts.iter_rows())
    rows.append(("all", made.height, int((made["choice"] == "left").sum())))
    schema = {
        "labeler": pl.String,
        "decisive": pl.Int64,
        "left": pl.Int64,
        "left_share": pl.Float64,
        "ci_low": pl.Float64,
        "ci_high": pl.Float64,
        "biased": pl.Boolean,
    }
    out = []
    for who, n, left in rows:
        low, high = wilson(int(left), int(n))
        share = left / n if n else None
        out.append((who, n, left, share, low, high, None if n == 0 else not low <= 0.5 <= high))
    return pl.DataFrame(out, schema=schema, orient="row")


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float | None, float | None]:
    """The Wilson score interval of a binomial proportion (None, None for no trials)."""
    if n == 0:
        return None, None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def progress(events: pl.DataFrame, labeler: str, now: datetime) -> dict:
    """The labeler's compare progress: choices (repeats included), pairs, skips, per hour."""
    mine = events.filter(pl.col("labeler") == labeler)
    made = choices(mine)
    skips = active_pairs(mine).filter(pl.col("kind") == "skip").height
    return {
        "labeler": labeler,
        "choices": made.height,
        "pairs": made["pair"].n_unique(),
        "skipped": skips,
        "per_hour": round(choices_per_hour(made, labeler, now), 1),
    }


def summary(events: pl.DataFrame, now: datetime | None = None) -> dict:
    """Everything the stats page shows about pairs, as JSON-ready lists of rows."""
    return {
        "pairs": latest(events)["pair"].n_unique(),
        "choices": choices(events).height,
        "labelers": per_labeler(events, now).to_dicts(),
        "hourly": hourly(events).to_dicts(),
        "agreement": agreement(events).to_dicts(),
        "self_consistency": self_consistency(events).to_dicts(),
        "position_bias": position_bias(events).to_dicts(),
    }


def _ratio(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    return pl.when(denominator > 0).then(numerator / denominator).otherwise(None)
