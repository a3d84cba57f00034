"""What the checks measure on an export, read back from its files: captions that do not start
with their bucket's tags, empty captions, row counts against the manifest and the selection,
checksums. Plain numbers, for GX expectations to judge.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polars as pl

from assets.captions import manifest as manifests
from assets.captions.captions import CaptionRules, bucket_tags
from assets.captions.formats import read_rows
from assets.captions.vocabulary import Family


def rules_of(manifest: dict) -> CaptionRules:
    return CaptionRules.described(manifest["caption"])


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


def _alternatives(words: list[str]) -> str:
    # Longest first: "score_9, score_8_up" must not stop at "score_9".
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))


def _items(rules: CaptionRules, where: str, bucket, rating, site) -> list[tuple[str, bool]]:
    """(pattern, required) of each item the vocabulary places in the prefix or suffix: a
    row's own bucket, rating and source tags where the row says them, else any of them."""
    items = []
    for item in rules.words.placed(where):
        phrases = _phrases(item, rules, bucket, rating, site)
        if not phrases:  # a site given no source tag
            continue
        bucketed = isinstance(item, Family) and item.bucketed
        required = item == "rating" or bucketed or (item == "source" and site is not None)
        items.append((_alternatives(phrases), required))
    return items


def _patterns(rules: CaptionRules, bucket, rating, site) -> tuple[str, str]:
    """The regular expressions a caption must match: its fixed prefix at the start (the
    caption framed by ", " at both ends), and its trailing tags (the caption's tail from
    its first trailing word on, see _tails) as a whole."""
    front = "".join(
        f"(?:{p}), " if required else f"(?:(?:{p}), )?"
        for p, required in _items(rules, "prefix", bucket, rating, site)
    )
    back = "".join(
        f", (?:{p})" if required else f"(?:, (?:{p}))?"
        for p, required in _items(rules, "suffix", bucket, rating, site)
    )
    return "^, " + front, "^" + back + "$"


def _tails(text: pl.Series, rules: CaptionRules) -> pl.Series:
    """Each caption's tail: ", " and its tags from the first the vocabulary places after the
    post's tags on, among its last few (as many as the trailing tags can be); "" without
    any. A post's own tag is never one of them, so whatever follows the first must be the
    vocabulary's trailing tags, in order."""
    placed = rules.words.placed("suffix")
    words = sorted({w for item in placed for w in _words_of(item, rules)})
    if not words:  # nothing goes last: no caption has a tail
        return pl.Series([""] * len(text), dtype=pl.String)
    # The most tokens the trailing tags can take: only that many are split, not every tag.
    most = sum(
        max((len(p.split(", ")) for p in _phrases(item, rules)), default=0) for item in placed
    )
    last = (pl.lit(", ") + pl.col("text")).str.extract(rf"((?:, [^,]*){{0,{most}}})$", 1)
    tokens = last.str.strip_prefix(", ").str.split(", ")
    trailing = tokens.list.eval(pl.element().filter(pl.element().is_in(words).cum_max()))
    tail = trailing.list.join(", ")
    tails = pl.when(tail != "").then(pl.lit(", ") + tail).otherwise(pl.lit(""))
    return pl.DataFrame({"text": text}).select(tails).to_series()


def _phrases(item, rules: CaptionRules, bucket=None, rating=None, site=None) -> list[str]:
    """What one placed item can write, each phrase possibly several comma-separated tags:
    a row's own where the row says its bucket, rating or site, else every one."""
    if item == "rating":
        return [rules.ratings[rating]] if rating else list(rules.ratings.values())
    if item == "source":
        sources = dict(rules.source_tags)
        if site is not None:
            return [sources[site]] if site in sources else []
        return list(sources.values())
    if item.bucketed:
        buckets = [bucket] if bucket else range(rules.min_bucket, 10)
        return [", ".join(bucket_tags(item, b, rules.min_bucket)) for b in buckets]
    return item.words()


def _words_of(item, rules: CaptionRules) -> list[str]:
    return [w for phrase in _phrases(item, rules) for w in phrase.split(", ") if w]


def wrong_prefix(rows: pl.DataFrame, rules: CaptionRules) -> pl.Series:
    """True where a caption does not start with the tags its vocabulary places in front, or
    does not end with those it places last: a row's own bucket, rating and source tags where
    its format keeps them, else any bucket's (at or above the minimum) and any rating's; a
    family cut by value may give any one of its tags, or none."""
    text = pl.col("caption").fill_null("")
    if rules.keep_tokens_separator:
        text = text.str.replace_all(f" {rules.keep_tokens_separator} ", ", ", literal=True)
    plain = rows.select(text).to_series()
    framed = rows.select("bucket", "rating", "site", row=pl.int_range(pl.len())).with_columns(
        text=pl.lit(", ") + plain + pl.lit(", "), tail=_tails(plain, rules)
    )
    wrong = np.zeros(rows.height, bool)
    # One pair of patterns per bucket, rating and site seen: a few dozen, each matched over
    # all its rows at once.
    for (bucket, rating, site), part in framed.group_by("bucket", "rating", "site"):
        front, back = _patterns(rules, bucket, rating, site)
        ok = part["text"].str.contains(front) & part["tail"].str.contains(back)
        wrong[part["row"].to_numpy()] = ~ok.fill_null(False).to_numpy()
    return pl.Series(wrong)


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
