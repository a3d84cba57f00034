"""Captions: the vocabulary's fixed tags (score, quality, rating, source, ...), the post's own
tags, then the vocabulary's trailing tags, if any.

    score_9, score_8_up, ..., rating_safe, source_anime, character, copyright, artist, general

The `style` names the vocabulary (vocabulary.py): `pony-v6` (alias `v6`) gives bucket N
`score_N, score_{N-1}_up, ..., score_{min}_up` (so the best bucket gets `score_9,
score_8_up, ...`), `pony-v7` (`v7`) only `score_N`, `none` no quality tag; `animagine` and
`noobai` their quality, aesthetic and period tags; or a user's TOML file. The tags the
vocabulary places in front are the fixed part (`prefix`): `keep_tokens` counts them, for
kohya's option of the same name; those it places after the post's tags are the `suffix`.
`keep_tokens_separator` (kohya's, e.g. `|||`) is not part of `caption`: only the kohya
formats write it (formats.kohya_caption), since only sd-scripts removes it.

The post's tags: character, copyright and artist tags first, then the general tags in the
site's order; meta tags, the blacklist and a Philomena `artist:` tag whose artist is already
in front are dropped; underscores become spaces and parentheses are escaped, A1111-style
(both optional); each tag appears once, compared as written out.

Everything runs over whole columns: the tag lists are flattened into one column of tags,
each tag hashed once, and membership (is this tag a meta tag of its post? already in front?)
tested on 64-bit keys mixing the hash with the post's row. A false match between two
different tags needs a 64-bit collision.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields

import numpy as np
import polars as pl
import pyarrow as pa

from assets.captions.buckets import check_bucket
from assets.captions.families import tag_column
from assets.captions.vocabulary import Family, Vocabulary, from_description, resolve

FRONT = ("character_tags", "copyright_tags", "artist_tags")
TAG_COLUMNS = ("tags", *FRONT, "meta_tags")
PHILOMENA_ARTIST = "artist:"
_SEED = 0x5C0DE7A6
_MIX = np.uint64(0x9E3779B97F4A7C15)  # spreads row numbers over all 64 bits
_EMPTY = pl.lit([], dtype=pl.List(pl.String))
Cleaner = Callable[[pl.Series], pl.Series]


@dataclass(frozen=True)
class CaptionRules:
    """How a post's caption is written (the `[captions]` settings that shape text)."""

    style: str = "v6"  # a vocabulary: a shipped one's name, or a TOML file
    min_bucket: int = 1
    rating_tags: Mapping[str, str] = field(
        default_factory=lambda: {
            "g": "rating_safe",
            "s": "rating_questionable",
            "q": "rating_questionable",
            "e": "rating_explicit",
        }
    )
    source_tags: Mapping[str, str] = field(default_factory=dict)
    blacklist: Sequence[str] = ()
    underscores_to_spaces: bool = True
    escape_parentheses: bool = True
    keep_tokens_separator: str = ""
    # What `style` names, read once (or from a manifest's copy of it: see rules_of).
    vocabulary: Vocabulary | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.vocabulary is None:
            object.__setattr__(self, "vocabulary", resolve(self.style))
        check_bucket(self.min_bucket, "the minimum bucket")

    @property
    def words(self) -> Vocabulary:
        """The vocabulary (never None once built)."""
        assert self.vocabulary is not None
        return self.vocabulary

    @property
    def ratings(self) -> dict[str, str]:
        """Each rating's tag: the vocabulary's where it has its own, else [captions]'."""
        return {**dict(self.rating_tags), **dict(self.words.rating_tags)}

    @classmethod
    def from_settings(cls, settings, **overrides) -> CaptionRules:
        """From a CaptionSettings, with `overrides` (style, min_bucket) taking precedence."""
        values = {name: getattr(settings, name) for name in rule_names()}
        return cls(**{**values, **{k: v for k, v in overrides.items() if v is not None}})

    def describe(self) -> dict:
        return {
            "style": self.style,
            "min_bucket": self.min_bucket,
            "rating_tags": dict(self.rating_tags),
            "source_tags": dict(self.source_tags),
            "blacklist": list(self.blacklist),
            "underscores_to_spaces": self.underscores_to_spaces,
            "escape_parentheses": self.escape_parentheses,
            "keep_tokens_separator": self.keep_tokens_separator,
            "vocabulary": self.words.describe(),
        }

    @classmethod
    def described(cls, caption: dict) -> CaptionRules:
        """The rules a manifest's `caption` entry describes (its own copy of the vocabulary,
        so a user's file may since have moved or changed)."""
        given = caption.get("vocabulary")
        vocabulary = from_description(given) if given else None
        return cls(**{k: caption[k] for k in rule_names()}, vocabulary=vocabulary)


def rule_names() -> tuple[str, ...]:
    """The names of CaptionRules' fields that are `[captions]` settings and manifest entries
    shaping a caption."""
    return tuple(f.name for f in fields(CaptionRules) if f.name != "vocabulary")


def score_tags(bucket: int, style: str, min_bucket: int = 1) -> list[str]:
    """The score tags of a bucket (at or above `min_bucket`) in a style."""
    return bucket_tags(resolve(style).bucket_family, bucket, min_bucket)


def bucket_tags(family: Family | None, bucket: int, min_bucket: int = 1) -> list[str]:
    """A bucket family's tags for `bucket`: its own, then (with `up`) each lower bucket's
    down to `min_bucket`; none without a bucket family."""
    check_bucket(bucket)
    if bucket < check_bucket(min_bucket, "the minimum bucket"):
        raise ValueError(f"bucket {bucket} is below the minimum bucket {min_bucket}")
    if family is None:
        return []
    lower = range(bucket - 1, min_bucket - 1, -1) if family.up else ()
    return [family.tag.format(n=bucket), *(family.up.format(n=n) for n in lower)]


def _placed(item: Family | str, rules: CaptionRules, frame: pl.DataFrame) -> pl.Expr:
    """The tags one placed item gives each row (null where none)."""
    if item == "rating":
        return pl.col("rating").replace_strict(rules.ratings, return_dtype=pl.String)
    if item == "source":
        return pl.col("site").replace_strict(
            dict(rules.source_tags), default=None, return_dtype=pl.String
        )
    assert isinstance(item, Family)
    if item.bucketed:
        texts = {
            b: ", ".join(bucket_tags(item, b, rules.min_bucket))
            for b in range(rules.min_bucket, 10)
        }
        return pl.col("bucket").replace_strict(texts, return_dtype=pl.String)
    column = tag_column(item)
    if column not in frame.columns:
        raise ValueError(f"the {item.name} tags were not worked out (no {column} column)")
    return pl.col(column)


def _joined(frame: pl.DataFrame, rules: CaptionRules, where: str) -> pl.Expr:
    parts = [_placed(item, rules, frame) for item in rules.words.placed(where)]
    if not parts:
        return pl.repeat(None, pl.len(), dtype=pl.String)
    joined = pl.concat_str(parts, separator=", ", ignore_nulls=True)
    return pl.when(joined != "").then(joined)


def prefix_varies(rules: CaptionRules) -> bool:
    """Whether the number of fixed tags varies with more than the bucket and the source tag:
    a family cut by value in front (a post may have no tag of it), or a rating written as
    several tags."""
    words = rules.words
    cut_in_front = any(f in words.cut_families() for f in words.placed("prefix"))
    return cut_in_front or any("," in tag for tag in rules.ratings.values())


def fixed_prefix(frame: pl.DataFrame, rules: CaptionRules) -> pl.DataFrame:
    """`prefix` (the tags the vocabulary places in front, joined) and `keep_tokens` (how many
    comma-separated tokens they are, as kohya counts) of each row of `frame` (bucket, rating,
    site, and the tag column of each family cut by value)."""
    below = frame.filter(pl.col("bucket") < rules.min_bucket)
    if below.height:
        raise ValueError(f"{below.height} rows lie below the minimum bucket {rules.min_bucket}")
    prefix = _joined(frame, rules, "prefix")
    return frame.select(
        prefix=prefix,
        keep_tokens=(prefix.str.count_matches(", ", literal=True) + 1).fill_null(0).cast(pl.Int32),
    )


def build_captions(frame: pl.DataFrame, rules: CaptionRules) -> pl.DataFrame:
    """`frame` (bucket, rating, site, the tag lists, and the tag column of each family cut by
    value) with `caption`, `tags` (the post's own tags as written in the caption), `prefix`
    (the fixed tags), `keep_tokens` and `suffix` (the trailing tags). The caption joins them
    with ", ", whatever `keep_tokens_separator` says (see kohya_caption)."""
    missing = {"bucket", "rating", "site", *TAG_COLUMNS} - set(frame.columns)
    if missing:
        raise ValueError(f"captions need the columns {', '.join(sorted(missing))}")
    unknown = set(frame["rating"].unique().drop_nulls()) - set(rules.ratings)
    if unknown or frame["rating"].null_count():
        raise ValueError(f"no rating tag for ratings {sorted(unknown) or [None]}")
    # A tag list that is null in every row arrives untyped.
    frame = frame.with_columns(pl.col(c).cast(pl.List(pl.String)) for c in TAG_COLUMNS)
    prefix = fixed_prefix(frame, rules)
    suffix = frame.select(suffix=_joined(frame, rules, "suffix")).to_series()
    text = tag_text(frame, rules)
    caption = pl.concat_str(
        [prefix["prefix"], pl.when(text != "").then(text), suffix],
        separator=", ",
        ignore_nulls=True,
    )
    return frame.with_columns(
        caption=pl.select(caption).to_series(),
        tags=text,
        prefix=prefix["prefix"],
        keep_tokens=prefix["keep_tokens"],
        suffix=suffix,
    )


@dataclass
class _Flat:
    """Tag lists flattened: every tag, cleaned; its post's row; the lists' offsets."""

    values: pl.Series
    rows: np.ndarray
    offsets: np.ndarray

    @classmethod
    def of(cls, lists: pl.Series, clean: Cleaner) -> _Flat:
        lengths = lists.list.len().fill_null(0).to_numpy().astype(np.int64)
        offsets = np.zeros(len(lists) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        values = clean(lists.explode(empty_as_null=False, keep_nulls=False))
        return cls(values, np.repeat(np.arange(len(lists), dtype=np.uint64), lengths), offsets)

    def keys(self, hashes: np.ndarray) -> np.ndarray:
        return hashes ^ (self.rows * _MIX)

    def joined(self, keep: np.ndarray) -> pl.Series:
        """Each row's kept tags joined with ", " ("" where none is kept)."""
        kept = pl.select(pl.when(pl.Series(keep)).then(self.values)).to_series()
        values = kept.to_arrow(compat_level=pl.CompatLevel.newest())
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        lists = pa.LargeListArray.from_arrays(pa.array(self.offsets), values)
        return pl.Series(lists).list.join(", ", ignore_nulls=True)


def _hash(values: pl.Series) -> np.ndarray:
    return values.hash(seed=_SEED).to_numpy()


def _cleaner(rules: CaptionRules) -> Cleaner:
    if rules.underscores_to_spaces:
        return lambda values: values.str.replace_all("_", " ", literal=True)
    return lambda values: values


def _blacklisted(rules: CaptionRules, clean: Cleaner) -> pl.Series:
    """Hashes of the blacklist, cleaned, in both spellings."""
    forms = {
        f for tag in rules.blacklist for f in (tag, tag.replace(" ", "_"), tag.replace("_", " "))
    }
    return pl.Series(_hash(clean(pl.Series(sorted(forms), dtype=pl.String))))


def tag_text(frame: pl.DataFrame, rules: CaptionRules) -> pl.Series:
    """Each post's own tags, ordered, cleaned and deduplicated, joined with ", "."""
    clean = _cleaner(rules)
    front = _Flat.of(
        frame.select(pl.concat_list(pl.col(c).fill_null(_EMPTY) for c in FRONT)).to_series(), clean
    )
    general = _Flat.of(frame["tags"], clean)
    meta = _Flat.of(frame["meta_tags"], clean)
    artists = _Flat.of(frame["artist_tags"], lambda v: clean(PHILOMENA_ARTIST + v))
    blacklist = _blacklisted(rules, clean)
    front_h, general_h = _hash(front.values), _hash(general.values)
    front_k, general_k = pl.Series(front.keys(front_h)), pl.Series(general.keys(general_h))
    meta_k = pl.Series(meta.keys(_hash(meta.values)))
    dropped = pl.concat([front_k, meta_k, pl.Series(artists.keys(_hash(artists.values)))])
    keep_front = (
        ~pl.Series(front_h).is_in(blacklist.implode())
        & ~front_k.is_in(meta_k.implode())
        & front_k.is_first_distinct()
        & front.values.is_not_null()
    )
    keep_general = (
        ~pl.Series(general_h).is_in(blacklist.implode())
        & ~general_k.is_in(dropped.implode())
        & _first_in_row(general, general_k)
        & general.values.is_not_null()
    )
    text = pl.concat_str(
        _non_empty(front.joined(keep_front.to_numpy())),
        _non_empty(general.joined(keep_general.to_numpy())),
        separator=", ",
        ignore_nulls=True,
    )
    text = pl.select(text.fill_null("")).to_series()
    if rules.escape_parentheses:
        text = text.str.replace_all("(", r"\(", literal=True).str.replace_all(
            ")", r"\)", literal=True
        )
    return text.alias("tags")


def _non_empty(text: pl.Series) -> pl.Expr:
    return pl.when(text != "").then(text)


def _first_in_row(flat: _Flat, keys: pl.Series) -> pl.Series:
    """True for each tag's first appearance in its row. Booru tag lists rarely repeat a tag:
    only the rows that do (a cheap count of distinct keys per row finds them) are sorted out
    tag by tag."""
    per_row = pl.Series(
        pa.LargeListArray.from_arrays(pa.array(flat.offsets), pa.array(keys.to_numpy()))
    )
    repeating = (per_row.list.n_unique() < per_row.list.len()).to_numpy()
    first = np.ones(len(keys), bool)
    if repeating.any():
        in_repeating = repeating[flat.rows.astype(np.int64)]
        first[in_repeating] = keys.filter(pl.Series(in_repeating)).is_first_distinct().to_numpy()
    return pl.Series(first)
