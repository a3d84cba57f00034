"""Captions: score tags of both styles on every bucket, tag order and cleaning, and the
vectorised builder against a plain per-post reading of the rules."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assets.captions.captions import CaptionRules, build_captions, score_tags
from assets.captions.formats import kohya_caption

V6_TOP = "score_9, score_8_up, score_7_up, score_6_up, score_5_up, score_4_up"
LISTS = ("tags", "character_tags", "copyright_tags", "artist_tags", "species_tags", "meta_tags")


def _frame(rows: list[dict]) -> pl.DataFrame:
    base = {"bucket": 5, "rating": "g", "site": "danbooru", **{c: None for c in LISTS}}
    schema = {
        "bucket": pl.Int32,
        "rating": pl.String,
        "site": pl.String,
        **{c: pl.List(pl.String) for c in LISTS},
    }
    return pl.DataFrame([{**base, **row} for row in rows], schema=schema)


def _caption(rules: CaptionRules | None = None, **row) -> dict:
    return build_captions(_frame([row]), rules or CaptionRules()).row(0, named=True)


# --- score tags -------------------------------------------------------------------------------


@pytest.mark.parametrize("min_bucket", range(1, 10))
@pytest.mark.parametrize("bucket", range(1, 10))
def test_v6_and_v7_score_tags_on_every_bucket(bucket: int, min_bucket: int):
    if bucket < min_bucket:
        with pytest.raises(ValueError, match="below the minimum bucket"):
            score_tags(bucket, "v6", min_bucket)
        return
    v6 = score_tags(bucket, "v6", min_bucket)
    assert v6[0] == f"score_{bucket}"
    assert v6[1:] == [f"score_{n}_up" for n in range(bucket - 1, min_bucket - 1, -1)]
    assert len(v6) == bucket - min_bucket + 1
    assert score_tags(bucket, "v7", min_bucket) == [f"score_{bucket}"]
    assert score_tags(bucket, "none", min_bucket) == []


def test_the_pony_v6_strings():
    assert ", ".join(score_tags(9, "v6", 4)) == V6_TOP
    assert (
        ", ".join(score_tags(8, "v6", 4))
        == "score_8, score_7_up, score_6_up, score_5_up, score_4_up"
    )
    assert score_tags(4, "v6", 4) == ["score_4"]  # the lowest bucket: its own tag only
    assert score_tags(1, "v6") == ["score_1"]
    assert len(score_tags(9, "v6")) == 9  # the full range, down to score_1_up


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: score_tags(0, "v6"), "bucket must be an integer from 1 to 9"),
        (lambda: score_tags(10, "v7"), "bucket must be an integer from 1 to 9"),
        (lambda: score_tags(5, "v8"), "unknown caption style 'v8'"),
        (lambda: score_tags(5, "v6", 0), "the minimum bucket must be an integer from 1 to 9"),
        (
            lambda: CaptionRules(style="pony"),
            "unknown caption style 'pony': choose animagine, none, noobai, pony-v6, pony-v7",
        ),
        (lambda: CaptionRules(min_bucket=10), "the minimum bucket must be"),
    ],
)
def test_bad_styles_and_buckets_are_clear_errors(call, message: str):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("style", ["v6", "v7", "none"])
@pytest.mark.parametrize("bucket", range(1, 10))
def test_every_caption_starts_with_its_bucket_then_the_rating(style: str, bucket: int):
    row = _caption(CaptionRules(style=style), bucket=bucket, rating="e", tags=["solo"])
    fixed = [*score_tags(bucket, style), "rating_explicit"]
    assert row["caption"] == ", ".join([*fixed, "solo"])
    assert row["keep_tokens"] == len(fixed)


def test_rows_below_the_minimum_bucket_are_refused():
    with pytest.raises(ValueError, match="below the minimum bucket 4"):
        build_captions(_frame([{"bucket": 3}]), CaptionRules(min_bucket=4))


def test_an_unknown_rating_is_refused():
    with pytest.raises(ValueError, match="no rating tag for ratings"):
        build_captions(_frame([{"rating": "x"}]), CaptionRules())


# --- tags -------------------------------------------------------------------------------------


def test_category_tags_first_meta_and_blacklist_dropped_duplicates_removed():
    row = _caption(
        CaptionRules(
            style="v7", blacklist=("text only",), source_tags={"danbooru": "source_anime"}
        ),
        bucket=9,
        tags=["1girl", "vocaloid", "long_hair", "text_only", "absurdres", "hatsune_miku", "1girl"],
        character_tags=["hatsune_miku"],
        copyright_tags=["vocaloid"],
        artist_tags=["kz"],
        meta_tags=["absurdres"],
    )
    assert row["caption"] == (
        "score_9, rating_safe, source_anime, hatsune miku, vocaloid, kz, 1girl, long hair"
    )
    assert row["tags"] == "hatsune miku, vocaloid, kz, 1girl, long hair"
    assert row["keep_tokens"] == 3


def test_underscores_and_parentheses_both_optional():
    tags = {"tags": ["star_(sky)", "long_hair"], "character_tags": ["rin_(vocaloid)"]}
    assert _caption(**tags)["tags"] == r"rin \(vocaloid\), star \(sky\), long hair"
    raw = CaptionRules(underscores_to_spaces=False, escape_parentheses=False)
    assert _caption(raw, **tags)["tags"] == "rin_(vocaloid), star_(sky), long_hair"
    spaces_only = CaptionRules(escape_parentheses=False)
    assert _caption(spaces_only, **tags)["tags"] == "rin (vocaloid), star (sky), long hair"


def test_spellings_that_clean_to_one_tag_appear_once():
    row = _caption(tags=["long_hair", "long hair", "smile"], character_tags=["a_b", "a b"])
    assert row["tags"] == "a b, long hair, smile"
    kept = _caption(CaptionRules(underscores_to_spaces=False), tags=["long_hair", "long hair"])
    assert kept["tags"] == "long_hair, long hair"  # written differently: two tags


def test_the_blacklist_matches_either_spelling():
    for entry in ("long hair", "long_hair"):
        for tag in ("long hair", "long_hair"):
            row = _caption(CaptionRules(blacklist=(entry,)), tags=[tag, "solo"])
            assert row["tags"] == "solo", (entry, tag)


def test_a_philomena_artist_tag_goes_once_in_front():
    row = _caption(
        site="derpibooru",
        tags=["pony", "artist:yuta", "oc:fluffle puff"],
        artist_tags=["yuta"],
        character_tags=["oc:fluffle puff"],
    )
    assert row["tags"] == "oc:fluffle puff, yuta, pony"


def test_missing_lists_and_no_tags_leave_the_fixed_tags_alone():
    row = _caption(bucket=2, tags=None)
    assert row["caption"] == "score_2, score_1_up, rating_safe" and row["tags"] == ""
    everything_dropped = _caption(tags=["highres"], meta_tags=["highres"])
    assert everything_dropped["caption"].endswith("rating_safe")


def test_keep_tokens_separator_only_in_the_kohya_caption():
    rules = CaptionRules(style="v7", keep_tokens_separator="|||")
    row = _caption(rules, bucket=8, rating="q", tags=["solo", "smile_(happy)"])
    # the caption every other format writes: no separator, escaped as the rules say
    assert row["caption"] == "score_8, rating_questionable, solo, smile \\(happy\\)"
    assert row["keep_tokens"] == 2 and row["prefix"] == "score_8, rating_questionable"
    kohya = kohya_caption(pl.DataFrame([row]), rules.keep_tokens_separator)
    assert kohya.to_list() == ["score_8, rating_questionable ||| solo, smile (happy)"]
    assert kohya_caption(pl.DataFrame([row]), "").to_list() == [
        "score_8, rating_questionable, solo, smile (happy)"
    ]


def test_source_tag_only_for_the_sites_that_have_one():
    rules = CaptionRules(style="none", source_tags={"e621": "source_furry"})
    frame = _frame([{"site": "e621", "tags": ["fox"]}, {"site": "gelbooru", "tags": ["cat"]}])
    out = build_captions(frame, rules)
    assert out["caption"].to_list() == ["rating_safe, source_furry, fox", "rating_safe, cat"]
    assert out["keep_tokens"].to_list() == [2, 1]


# --- against a plain reading of the rules -------------------------------------------------------


def _reference(row: dict, rules: CaptionRules) -> str:
    """The rules, read one post at a time."""

    def clean(tag: str) -> str:
        return tag.replace("_", " ") if rules.underscores_to_spaces else tag

    blacklist = {
        clean(f) for t in rules.blacklist for f in (t, t.replace(" ", "_"), t.replace("_", " "))
    }
    front = [t for c in ("character_tags", "copyright_tags", "artist_tags") for t in row[c] or []]
    meta = {clean(t) for t in row["meta_tags"] or []}
    namespaced = {clean("artist:" + a) for a in row["artist_tags"] or []}
    out: list[str] = []
    for tag in [clean(t) for t in front]:
        if tag not in blacklist and tag not in meta and tag not in out:
            out.append(tag)
    seen_front = set(out) | {clean(t) for t in front}
    for tag in [clean(t) for t in row["tags"] or []]:
        if tag in blacklist or tag in meta or tag in namespaced or tag in seen_front or tag in out:
            continue
        out.append(tag)
    text = ", ".join(out)
    if rules.escape_parentheses:
        text = text.replace("(", r"\(").replace(")", r"\)")
    fixed = [
        *score_tags(row["bucket"], rules.style, rules.min_bucket),
        rules.rating_tags[row["rating"]],
    ]
    if row["site"] in rules.source_tags:
        fixed.append(rules.source_tags[row["site"]])
    return ", ".join(fixed) + (", " + text if text else "")


TAG = st.text(alphabet="ab_ (", min_size=1, max_size=4)
TAGS = st.one_of(st.none(), st.lists(TAG, max_size=6))
ROW = st.fixed_dictionaries(
    {
        "bucket": st.integers(3, 9),
        "rating": st.sampled_from("gsqe"),
        "site": st.sampled_from(["danbooru", "derpibooru"]),
        "tags": TAGS,
        "character_tags": TAGS,
        "copyright_tags": TAGS,
        "artist_tags": TAGS,
        "species_tags": st.none(),
        "meta_tags": TAGS,
    }
)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(ROW, min_size=1, max_size=12),
    style=st.sampled_from(["v6", "v7", "none"]),
    underscores=st.booleans(),
    parentheses=st.booleans(),
    blacklist=st.lists(TAG, max_size=2),
)
def test_vectorised_captions_match_the_rules_read_post_by_post(
    rows, style, underscores, parentheses, blacklist
):
    rules = CaptionRules(
        style=style,
        min_bucket=3,
        source_tags={"derpibooru": "source_pony"},
        blacklist=tuple(blacklist),
        underscores_to_spaces=underscores,
        escape_parentheses=parentheses,
    )
    out = build_captions(_frame(rows), rules)
    assert out["caption"].to_list() == [_reference(r, rules) for r in rows]
