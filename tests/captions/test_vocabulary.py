"""Caption vocabularies: the shipped files, their validation, the families' cut-points
against values worked out by hand, and an export in the `animagine` style whose captions
follow the shipped rules."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from assets.captions.calibration import Policy, family_cuts
from assets.captions.captions import CaptionRules, build_captions
from assets.captions.export import Images, Request, export_catalog
from assets.captions.families import freeze, tags, with_tags
from assets.captions.manifest import read
from assets.captions.selection import Filter
from assets.captions.shards import Target
from assets.captions.verify import caption_counts, read_export, rules_of, wrong_prefix
from assets.captions.vocabulary import (
    VocabularyError,
    from_description,
    load,
    resolve,
    shipped,
)
from tests.captions.conftest import sha512_table
from tests.images.helpers import index_of

NOW = datetime(2026, 6, 1, tzinfo=UTC)
EVERYWHERE = {"sites": [], "ratings": []}


@pytest.mark.parametrize("name", ["pony-v6", "pony-v7", "animagine", "noobai", "none"])
def test_every_shipped_vocabulary_loads_and_reads_back_from_its_description(name: str):
    vocabulary = resolve(name)
    assert vocabulary.name == name and "rating" in vocabulary.prefix + vocabulary.suffix
    assert from_description(vocabulary.describe()) == vocabulary
    assert shipped() == sorted(["pony-v6", "pony-v7", "animagine", "noobai", "none"])


def test_the_old_pony_style_names_are_aliases():
    assert resolve("v6") == resolve("pony-v6") and resolve("v7") == resolve("pony-v7")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mine.toml"
    path.write_text(text)
    return path


GOOD_FAMILY = """
[families.q]
column = "popularity"
cuts = "percentile"
tags = ["best", "", "worst"]
above = [0.9, 0.1]
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('prefix = ["rating", "q"]\n' + GOOD_FAMILY.replace("0.9, 0.1", "0.1, 0.9"), "fall"),
        ('prefix = ["rating", "q"]\n' + GOOD_FAMILY.replace("0.9, 0.1", "0.9"), "give 2"),
        ('prefix = ["rating", "q"]\n' + GOOD_FAMILY.replace("0.9, 0.1", "1.5, 0.1"), "(0, 1)"),
        ('prefix = ["rating"]\n' + GOOD_FAMILY, "placed nowhere"),
        ('prefix = ["q"]\n' + GOOD_FAMILY, 'place "rating"'),
        ('prefix = ["rating", "nope"]\n', "no family of that name"),
        ('prefix = ["rating", "q"]\n' + GOOD_FAMILY.replace("popularity", "likes"), "column"),
        ('prefix = ["rating", "s"]\n[families.s]\ncolumn = "bucket"\ntag = "score"\n', "{n}"),
        ('prefix = ["rating"]\ncolour = "red"\n', "unknown keys ['colour']"),
        ('prefix = ["rating", "q"', "cannot read"),
    ],
)
def test_a_bad_vocabulary_file_is_a_clear_error(tmp_path: Path, text: str, message: str):
    with pytest.raises(VocabularyError, match=re.escape(message)):
        load(_write(tmp_path, text))


def test_a_users_file_is_a_style(tmp_path: Path):
    path = _write(tmp_path, 'prefix = ["q", "rating"]\n' + GOOD_FAMILY)
    rules = CaptionRules(style=str(path))
    assert rules.words.name == "mine" and [f.name for f in rules.words.cut_families()] == ["q"]
    with pytest.raises(VocabularyError, match="no vocabulary file"):
        CaptionRules(style=str(tmp_path / "missing.toml"))


def _values() -> pl.DataFrame:
    """danbooru/g popularity 0..100 and e621/g 0..20 (in hundredths): their quantiles are
    whole hundredths, easy to work out by hand; years 2004..2024 on danbooru, none on e621."""
    dan = np.arange(101) / 100
    e6 = np.arange(21) / 100
    return pl.DataFrame(
        {
            "site": ["danbooru"] * 101 + ["e621"] * 21,
            "rating": ["g"] * 122,
            "popularity": np.concatenate([dan, e6]),
            "score": np.concatenate([dan, e6]),
            "percentile": np.concatenate([dan, e6]),
            "year": [float(2004 + i % 21) for i in range(101)] + [None] * 21,
        }
    )


def test_quality_cut_points_are_percentiles_within_each_site_and_rating():
    quality = resolve("animagine").families["quality"]
    cuts = freeze(_values(), quality, EVERYWHERE, NOW)
    by_group = {(g.site, g.rating): g.thresholds for g in cuts.groups}
    # By hand: the q-quantile of 0..100 hundredths is q itself; of 0..20 it is q * 0.20.
    np.testing.assert_allclose(by_group[("danbooru", "g")], [0.95, 0.85, 0.75, 0.5, 0.25, 0.1])
    np.testing.assert_allclose(
        by_group[("e621", "g")], [0.19, 0.17, 0.15, 0.10, 0.05, 0.02], atol=1e-12
    )
    posts = pl.DataFrame(
        {
            "site": ["danbooru"] * 8 + ["e621"] * 3,
            "rating": ["g"] * 11,
            "popularity": [0.96, 0.95, 0.86, 0.85, 0.51, 0.11, 0.10, None, 0.20, 0.19, 0.18],
        }
    )
    assert tags(posts, quality, cuts).to_list() == [
        "masterpiece",  # above the 95th percentile
        "best quality",  # at it: "> 95%" only
        "best quality",
        "great quality",
        "good quality",
        "low quality",
        "worst quality",  # at or below the 10th
        None,  # no popularity: no quality tag
        "masterpiece",  # e621's own cut-points: 0.20 > 0.19
        "best quality",
        "best quality",
    ]


def test_cut_points_stay_frozen_and_a_new_site_gets_its_own():
    quality = resolve("noobai").families["quality"]
    values = _values()
    first = freeze(values.filter(pl.col("site") == "danbooru"), quality, EVERYWHERE, NOW)
    grown = pl.concat([values, values.with_columns(popularity=pl.col("popularity") * 0.5)])
    later = freeze(grown, quality, EVERYWHERE, datetime(2027, 1, 1, tzinfo=UTC), first)
    groups = {(g.site, g.rating): g for g in later.groups}
    assert groups[("danbooru", "g")] == first.groups[0]  # untouched by the catalog's growth
    assert ("e621", "g") in groups and later.created_at == NOW


def test_period_and_aesthetic_tags_follow_absolute_and_percentile_rules():
    words = resolve("noobai")
    period, aesthetic = words.families["period"], words.families["aesthetic"]
    values = _values()
    years = pl.DataFrame({"site": "x", "rating": "g", "year": [2024.0, 2021, 2020, 2018, 2017]})
    years = pl.concat([years, pl.DataFrame({"site": "x", "rating": "g", "year": [2014.0, 2013]})])
    years = pl.concat([years, pl.DataFrame({"site": "x", "rating": "g", "year": [2011.0, 2005]})])
    period_cuts = freeze(values, period, EVERYWHERE, NOW)
    assert tags(years, period, period_cuts).to_list() == [
        *("newest", "newest", "recent", "recent", "mid", "mid", "early", "early", "old"),
    ]
    # Percentiles over the whole scope (both sites): the 95th and 5th of the 122 scores.
    cuts = freeze(values, aesthetic, EVERYWHERE, NOW)
    everything = np.sort(values["score"].to_numpy())
    rank = 0.95 * (len(everything) - 1)  # linear interpolation between order statistics
    low, frac = int(rank), rank - int(rank)
    hand = everything[low] + frac * (everything[low + 1] - everything[low])
    assert cuts.groups[0].thresholds[0] == pytest.approx(hand)
    scores = pl.DataFrame({"site": "x", "rating": "g", "score": [1.0, 0.5, 0.0]})
    assert tags(scores, aesthetic, cuts).to_list() == ["very awa", None, "worst aesthetic"]


def _request(tmp_path: Path, fmt: str, style: str) -> Request:
    rules = CaptionRules(style=style, min_bucket=1)
    return Request(
        target=Target(fmt, tmp_path / fmt, 3, image_root=tmp_path / "home" / "images"),
        rules=rules,
        where=Filter(min_bucket=1),
        policy=Policy(),
        record=tmp_path / "calibrations",
    )


def _images(layout) -> Images:
    return Images(layout.images, lambda: index_of(layout.home, layout.images), sha512=sha512_table)


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "kohya", "kohya_json", "webdataset", "hf"])
def test_an_animagine_export_follows_the_shipped_rules_in_every_format(home, tmp_path, fmt):
    request = _request(tmp_path, fmt, "animagine")
    result = export_catalog(home.catalog, request, _images(home), writable=True, now=NOW)
    manifest = read(request.target.out)
    rows = read_export(request.target.out, manifest)
    rules = rules_of(manifest)
    assert rules.words.name == "animagine" and rows.height == result.rows > 0
    assert caption_counts(rows, rules) == {
        "rows_read": rows.height,
        "empty_captions": 0,
        "wrong_prefix": 0,
    }
    captions = set(rows["caption"].to_list())
    # The conftest catalog by hand: danbooru/g live posts with an image of their own are 1, 5
    # and 7 (3's image is e621's, 9 is deleted), popularity 0.1, 0.5, 0.7: the quantiles of
    # those three are 0.68 (95th), 0.64, 0.60, 0.50, 0.30, 0.18 (10th). Post 7 (0.7) is a
    # masterpiece, 5 (0.5) normal quality, 1 (0.1) worst quality; scores 0.65, 0.45 and 0.05
    # are aesthetic, displeasing (0.45 is not above 0.45) and very displeasing; made in 2026.
    tail = {7: "masterpiece, aesthetic", 5: "normal quality, displeasing", 1: "worst quality"}
    tail[1] += ", very displeasing"
    for i, end in tail.items():
        own = f"safe, hatsune miku, vocaloid, artist {i}, 1girl, danbooru tag {i}, long hair"
        if fmt in ("kohya", "kohya_json"):
            own = own.replace(" \\(", " (")
        assert f"{own}, {end}, newest" in captions, (i, sorted(captions))
    if fmt in ("kohya", "kohya_json"):
        # The fixed prefix is the rating tag: one token, or two for "explicit, nsfw".
        keeps = {group["keep_tokens"] for group in manifest["kohya"]}
        assert keeps == {1, 2}
        assert all(g["folder"].endswith(f"_keep{g['keep_tokens']}") for g in manifest["kohya"])
    assert set(manifest["tag_calibrations"]) == {"quality", "aesthetic", "period"}


def test_cut_points_are_frozen_in_the_catalog_and_a_read_only_export_needs_them(home, tmp_path):
    from assets.captions.calibration import CalibrationNeeded, prepare

    words = resolve("noobai")
    con = duckdb.connect(str(home.catalog))
    prepare(con)
    con.execute(
        "INSERT INTO calibrations SELECT 'h1', b, (b - 1) / 9.0, b / 9.0, now() "
        "FROM range(1, 10) AS t(b)"
    )
    with pytest.raises(CalibrationNeeded, match="quality"):
        family_cuts(con, "h1", words, EVERYWHERE, writable=False, now=NOW)
    made = family_cuts(con, "h1", words, EVERYWHERE, writable=True, now=NOW)
    again = family_cuts(con, "h1", words, EVERYWHERE, writable=False, now=NOW)
    assert again == made and set(made) == {"quality", "aesthetic", "period"}
    stored = con.execute("SELECT count(*) FROM tag_calibrations WHERE head_version = 'h1'")
    assert stored.fetchone() == (3,)
    con.close()


def test_a_suffix_family_is_checked_at_the_end_and_a_wrong_one_is_caught():
    rules = CaptionRules(style="animagine")
    frame = pl.DataFrame(
        {
            "bucket": [5, 5],
            "rating": ["g", "e"],
            "site": ["danbooru", "danbooru"],
            "tags": [["1girl"], ["1boy"]],
            "character_tags": [[], []],
            "copyright_tags": [[], []],
            "artist_tags": [[], []],
            "meta_tags": [[], []],
            "tag_quality": ["masterpiece", None],
            "tag_aesthetic": ["aesthetic", "displeasing"],
            "tag_period": ["newest", "old"],  # "old" is noobai's word, not animagine's
        }
    )
    captioned = build_captions(frame, rules)
    assert captioned["caption"].to_list() == [
        "safe, 1girl, masterpiece, aesthetic, newest",
        "explicit, nsfw, 1boy, displeasing, old",
    ]
    assert captioned["keep_tokens"].to_list() == [1, 2]
    assert wrong_prefix(captioned, rules).to_list() == [False, True]


def test_with_tags_adds_one_column_per_family():
    words = resolve("animagine")
    values = _values()
    cuts = {f.name: freeze(values, f, EVERYWHERE, NOW) for f in words.cut_families()}
    tagged = with_tags(values, words.cut_families(), cuts)
    assert {"tag_quality", "tag_aesthetic", "tag_period"} <= set(tagged.columns)


def test_families_keep_the_scope_the_head_was_calibrated_over(home, tmp_path):
    """A later change of the calibration scope in the settings moves no family's cut-points
    (as it moves no bucket) until `calibrate --force`."""
    request = _request(tmp_path, "parquet", "noobai")
    narrow = Policy(sites=("danbooru",))
    first = export_catalog(
        home.catalog, replace(request, policy=narrow), _images(home), writable=True, now=NOW
    )
    made = read(request.target.out)["tag_calibrations"]
    wide = replace(request, policy=Policy(), full=True)
    again = export_catalog(home.catalog, wide, _images(home), writable=True, now=NOW)
    assert read(request.target.out)["tag_calibrations"] == made
    assert made["aesthetic"]["rule"]["over"] == {"sites": ["danbooru"], "ratings": []}
    assert again.warnings and first.rows == again.rows
