"""caption_shards and its checks, materialized on the hand-made catalog."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest

from assets.captions import checks
from assets.captions.assets import caption_shards
from assets.captions.captions import CaptionRules
from assets.captions.manifest import read, sha256_file
from assets.captions.paths import export_dir
from assets.captions.verify import wrong_prefix
from orchestration.profile import load_profile
from orchestration.resources import ScoretagResource
from tests.captions.conftest import _post, add_scores

CHECKS = [
    checks.caption_shards_captions,
    checks.caption_shards_manifest,
    checks.caption_shards_bucket_distribution,
]


def _config(tmp_path: Path, formats: list[str]) -> Path:
    config = tmp_path / "captions.toml"
    listed = ", ".join(f'"{f}"' for f in formats)
    config.write_text(f"[captions]\nformats = [{listed}]\nshard_size = 5\n")
    return config


def _materialize(home, config: Path, selection=None):
    profile = load_profile("demo", home.home, config)
    return dg.materialize(
        [caption_shards, *CHECKS],
        resources={"scoretag": ScoretagResource.for_profile(profile, str(config))},
        selection=selection or [caption_shards.key],
        raise_on_error=False,
    )


def _checks(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_every_format_is_exported_and_every_check_passes(home, tmp_path: Path):
    formats = ["parquet", "jsonl", "kohya", "kohya_json", "webdataset"]
    result = _materialize(home, _config(tmp_path, formats))
    assert result.success
    metadata = result.asset_materializations_for_node("caption_shards")[0].metadata
    # left out: e621:10 (no file) and derpibooru:1, whose sha512 only raw posts would give
    assert metadata["selected"].value == 19 and metadata["rows_parquet"].value == 17
    assert metadata["calibrated_this_run"].value is True
    assert "score_" in metadata["example_captions"].value
    assert metadata["bucket_distribution"].value.startswith("![posts per bucket](data:image/png")
    assert metadata["export_parquet"].value == "whole: no previous export"
    assert metadata["export_kohya"].value == "whole: the kohya format is exported whole"
    shards = read(export_dir(home, "parquet"))["shards"]
    assert metadata["shards_parquet"].value["added"] == len(shards)
    assert {"plan", "select", "locate", "sizes", "write", "total"} <= set(
        metadata["seconds_parquet"].value
    )
    for fmt in formats:
        manifest = read(export_dir(home, fmt))
        assert manifest["format"] == fmt and manifest["head_version"] == "h1"
        assert Path(metadata[f"manifest_{fmt}"].value) == export_dir(home, fmt) / "manifest.json"
        assert manifest["command"].startswith("scoretag --profile demo --config ")
    evaluations = _checks(result)
    assert set(evaluations) == {
        "caption_shards_captions",
        "caption_shards_manifest",
        "caption_shards_bucket_distribution",
    }
    for name, evaluation in evaluations.items():
        assert evaluation.passed, (name, evaluation.description)
    # The demo profile's also_styles: every format again in Animagine's vocabulary, its own
    # folder, examples, and its families in the distribution check.
    for fmt in formats:
        manifest = read(export_dir(home, f"{fmt}-animagine"))
        assert manifest["caption"]["vocabulary"]["name"] == "animagine"
    examples = metadata["example_captions_parquet-animagine"].value
    assert examples.count("- `") == 3 and "newest" in examples and "score_" not in examples
    shown = evaluations["caption_shards_bucket_distribution"].metadata
    for family in ("quality", "aesthetic", "period"):
        assert shown[f"animagine_{family}_tags"].value.startswith(f"![{family} tags](data:image")
    assert "masterpiece" in shown["animagine_shares"].value
    counts = evaluations["caption_shards_manifest"].metadata
    assert counts["kohya_selection_unaccounted"].value == 0
    assert counts["webdataset_rows_in_manifest"].value == 17


def test_the_checks_see_a_tampered_export(home, tmp_path: Path):
    config = _config(tmp_path, ["parquet"])
    assert _materialize(home, config).success
    folder = export_dir(home, "parquet")
    manifest = read(folder)
    shard = folder / manifest["shards"][0]["name"]
    table = pq.read_table(shard)
    captions = table.column("caption").to_pylist()
    captions[0] = "score_9, " + captions[0]
    pq.write_table(table.set_column(4, "caption", [captions]), shard)
    result = dg.materialize(
        CHECKS,
        resources={
            "scoretag": ScoretagResource.for_profile(
                load_profile("demo", home.home, config), str(config)
            )
        },
        selection=dg.AssetSelection.checks(*CHECKS),
        raise_on_error=False,
    )
    evaluations = _checks(result)
    assert not evaluations["caption_shards_captions"].passed
    assert evaluations["caption_shards_captions"].metadata["parquet_wrong_prefix"].value == 1
    manifest_check = evaluations["caption_shards_manifest"]
    assert not manifest_check.passed
    assert manifest_check.metadata["parquet_checksum_mismatches"].value == 1
    assert sha256_file(shard) != manifest["shards"][0]["sha256"]


def test_the_distribution_check_warns_when_the_catalog_drifts(home, tmp_path: Path):
    config = _config(tmp_path, ["parquet"])
    assert _materialize(home, config).success
    # thirty new images, all in the top bucket: its share grows far past the tolerance
    add_scores(home.catalog, [_post("gelbooru", i, score=0.99) for i in range(1, 31)])
    result = _materialize(home, config)
    check = _checks(result)["caption_shards_bucket_distribution"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["largest_difference"].value > 0.05
    assert _checks(result)["caption_shards_manifest"].passed  # the export itself is sound


def test_no_active_head_materializes_and_says_so(home, tmp_path: Path):
    with duckdb.connect(str(home.catalog)) as con:
        con.execute("UPDATE heads SET active = false")
    result = _materialize(home, _config(tmp_path, ["parquet"]))
    assert result.success
    metadata = result.asset_materializations_for_node("caption_shards")[0].metadata
    assert metadata["head_version"].value == "none"
    assert all(e.passed for e in _checks(result).values())


@pytest.mark.parametrize("style", ["v6", "v7", "none"])
def test_wrong_prefix_reads_the_bucket_from_kohya_captions(style: str):
    rules = CaptionRules(style=style, min_bucket=3)
    good = {
        "v6": "score_5, score_4_up, score_3_up, rating_safe, x",
        "v7": "score_5, rating_explicit, x",
        "none": "rating_questionable, x",
    }[style]
    bad = [
        "score_2, rating_safe",  # below the minimum bucket
        # v6: score_4_up is missing; v7 (no _up tags): no rating tag right after score_5
        "score_5, score_3_up, rating_safe",
        "score_5, x, rating_safe",  # no rating tag after the score tags
        "x, rating_safe",
        "",
    ]
    captions = [good, *bad]
    rows = pl.DataFrame(
        {"caption": captions, "bucket": None, "rating": None, "site": None},
        schema={"caption": pl.String, "bucket": pl.Int32, "rating": pl.String, "site": pl.String},
    )
    assert wrong_prefix(rows, rules).to_list() == [False] + [True] * len(bad)
