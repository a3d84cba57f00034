"""What the checks measure on an export, read back from its files: captions that do not start
with their bucket's tags, empty captions, row counts against the manifest and the selection,
checksums. Plain numbers, for GX expectations to judge.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from assets.captions import manifest as manifests
from assets.captions.captions import CaptionRules, fixed_prefix, rule_names, score_tags
from assets.captions.formats import read_rows


def rules_of(manifest: dict) -> CaptionRules:
    caption = manifest["caption"]
    return CaptionRules(**{k: caption[k] for k in rule_names()})


def read_export(out: Path, manifest: dict) -> pl.DataFrame:
    """Every shard's rows (caption, and bucket, rating, site where the format keeps them),
    with the shard's name."""
    frames = []
    for shard in manifest["shards"]:
        rows = read_rows(manifest["format"], out / shard["name"])
        for column in ("bucket", "rating", "site"):
            if column not in rows.columns:
                rows = rows.with_columns(pl.lit(None, pl.String).alias(column))
        frames.append(
            rows.select(
                "caption",
                pl.col("bucket").cast(pl.Int32),
                pl.col("rating").cast(pl.String),
                pl.col("site").cast(pl.String),
                shard=pl.lit(shard["name"]),
            )
        )
    empty = {"caption": pl.String, "bucket": pl.Int32, "rating": pl.String, "site": pl.String}
    return pl.concat(frames) if frames else pl.DataFrame(schema={**empty, "shard": pl.String})


def _score_text(rules: CaptionRules) -> dict[int, str]:
    return {
        b: ", ".join(score_tags(b, rules.style, rules.min_bucket))
        for b in range(rules.min_bucket, 10)
    }


def wrong_prefix(rows: pl.DataFrame, rules: CaptionRules) -> pl.Series:
    """True where a caption does not start with its bucket's tags and rating tag. Rows whose
    format keeps no bucket or rating (kohya's) are judged by what the caption says: score
    tags of the bucket its first tag names (at or above the minimum), then a rating tag."""
    known = rows["bucket"].is_not_null() & rows["rating"].is_not_null()
    wrong = pl.Series([False] * rows.height)
    if known.any():
        full = rows.filter(known)
        expected = fixed_prefix(full, rules)["prefix"]
        wrong = wrong.scatter(known.arg_true(), ~full["caption"].str.starts_with(expected))
    if (~known).any():
        rest = rows.filter(~known)
        wrong = wrong.scatter((~known).arg_true(), ~_says_its_bucket(rest["caption"], rules))
    return wrong


def _says_its_bucket(captions: pl.Series, rules: CaptionRules) -> pl.Series:
    lead = pl.lit("")
    if rules.style != "none":
        named = pl.col("caption").str.extract(r"^score_(\d)\b").cast(pl.Int32)
        text = named.replace_strict(_score_text(rules), default=None, return_dtype=pl.String)
        lead = text + ", "  # null where the first tag names no bucket at or above the minimum
    ratings = sorted(set(rules.rating_tags.values()))
    ok = pl.any_horizontal(pl.col("caption").str.starts_with(lead + tag) for tag in ratings)
    return pl.DataFrame({"caption": captions}).select(ok.fill_null(False)).to_series()


def caption_counts(rows: pl.DataFrame, rules: CaptionRules) -> dict[str, int]:
    return {
        "rows_read": rows.height,
        "empty_captions": int((rows["caption"].fill_null("").str.strip_chars() == "").sum()),
        "wrong_prefix": int(wrong_prefix(rows, rules).sum()) if rows.height else 0,
    }


def count_problems(
    rows: pl.DataFrame, manifest: dict, out: Path, selected_now: int | None
) -> dict[str, int]:
    """Row counts and checksums against the manifest, and the selection against the
    catalog now (`selected_now`, None when not known)."""
    read = rows.group_by("shard").len()
    read = dict(zip(read["shard"].to_list(), read["len"].to_list(), strict=True))
    shards = manifest["shards"]
    dropped = sum(manifest.get("dropped", {}).values())
    return {
        "shards": len(shards),
        "rows_in_manifest": manifest["rows"],
        "shard_rows_off": sum(read.get(s["name"], 0) != s["rows"] for s in shards),
        "shard_rows_sum_off": abs(sum(s["rows"] for s in shards) - manifest["rows"]),
        "selection_unaccounted": abs(manifest["selected"] - manifest["rows"] - dropped),
        "selection_changed": 0
        if selected_now is None
        else abs(selected_now - manifest["selected"]),
        "checksum_mismatches": len(manifests.verify(out, manifest)),
    }
