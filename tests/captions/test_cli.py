"""`scoretag export` and `scoretag calibrate` on the hand-made catalog."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from scoretag.cli import cli
from scoretag.cli.export import FORMATS, export


def _run(home, *args: str):
    return CliRunner().invoke(cli, ["--profile", "demo", "--home", str(home.home), *args])


def test_export_calibrates_then_reuses_and_reports(home, tmp_path: Path):
    out = tmp_path / "shards"
    args = ["export", "--format", "jsonl", "--style", "v7", "--min-bucket", "3"]
    args += ["--ratings", "g,e", "--shard-size", "4", "--out", str(out)]
    first = _run(home, *args)
    assert first.exit_code == 0, first.output
    assert "has no cut-points yet: calibrating it first" in first.output
    assert "written, 0 unchanged" in first.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["caption"]["style"] == "v7" and manifest["filter"]["min_bucket"] == 3
    assert manifest["calibration"]["policy"] == "quantile"  # the demo profile's default
    assert manifest["command"].endswith(
        f"export --format jsonl --style v7 --min-bucket 3 --ratings e,g --shard-size 4 --out {out}"
    )
    lines = [
        json.loads(line)
        for s in manifest["shards"]
        for line in (out / s["name"]).read_text().splitlines()
    ]
    assert lines and all(r["caption"].startswith(f"score_{r['bucket']}, rating_") for r in lines)
    again = _run(home, *args)
    assert again.exit_code == 0 and "calibrating" not in again.output
    assert f"0 written, {len(manifest['shards'])} unchanged, 0 removed" in again.output
    # this hand-made catalog numbers no post (added_seq): the export says it built them whole
    assert "whole: the previous export records no added_seq ranges" in again.output
    whole = _run(home, *args, "--full")
    assert whole.exit_code == 0 and "whole:" in whole.output
    assert f"0 written, {len(manifest['shards'])} unchanged, 0 removed" in whole.output


def test_calibrate_keeps_cut_points_unless_forced(home):
    made = _run(home, "calibrate", "--policy", "absolute")
    assert made.exit_code == 0, made.output
    assert "policy absolute" in made.output and "0.9000" in made.output
    kept = _run(home, "calibrate", "--policy", "quantile")
    assert (
        "calibrated already; --force replaces" in kept.output and "policy absolute" in kept.output
    )
    forced = _run(home, "calibrate", "--policy", "quantile", "--force")
    assert forced.exit_code == 0 and "policy quantile" in forced.output


def test_export_in_the_animagine_style_and_a_users_vocabulary(home, tmp_path: Path):
    out = tmp_path / "animagine"
    first = _run(home, "export", "--format", "jsonl", "--style", "animagine", "--out", str(out))
    assert first.exit_code == 0, first.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["caption"]["vocabulary"]["name"] == "animagine"
    assert manifest["command"].split(" --style ")[1].startswith("animagine ")
    captions = {
        json.loads(line)["caption"]
        for s in manifest["shards"]
        for line in (out / s["name"]).read_text().splitlines()
    }
    # conftest's danbooru:7, by hand (tests/captions/test_vocabulary.py works the cut-points
    # out): the 95th percentile of its site and rating, score 0.65, made in 2026.
    assert (
        "safe, hatsune miku, vocaloid, artist 7, 1girl, danbooru tag 7, long hair, "
        "masterpiece, aesthetic, newest" in captions
    )
    shown = _run(home, "calibrate", "--style", "animagine")
    assert shown.exit_code == 0, shown.output
    assert "quality tags" in shown.output and "period tags" in shown.output
    assert "masterpiece" in shown.output and "danbooru" in shown.output
    mine = tmp_path / "mine.toml"
    mine.write_text(
        'prefix = ["era", "rating"]\n[families.era]\ncolumn = "year"\n'
        'tags = ["modern", "classic"]\nabove = [2015]\n'
    )
    own = _run(home, "export", "--format", "jsonl", "--style", str(mine), "--out", str(out / "x"))
    assert own.exit_code == 0, own.output
    assert "modern, rating_safe, " in own.output or "modern, rating_explicit" in own.output
    forced = _run(home, "calibrate", "--style", "animagine", "--force")
    assert forced.exit_code == 0, forced.output
    again = _run(home, "export", "--format", "jsonl", "--style", "animagine", "--out", str(out))
    assert again.exit_code == 0 and "0 written" in again.output  # same data, same cut-points


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "csv"], "'csv' is not one of"),
        (["--style", "v8"], "unknown caption style 'v8'"),
        (["--min-bucket", "0"], "0 is not in the range 1<=x<=9"),
        (["--min-bucket", "10"], "10 is not in the range 1<=x<=9"),
        (["--ratings", "g,x"], "ratings must be some of g, s, q, e"),
        (["--ratings", ","], "give at least one rating"),
        (["--sites", "danbooru,nowhere"], "sites must be some of danbooru, e621"),
        (["--shard-size", "0"], "0 is not in the range x>=1"),
    ],
)
def test_bad_export_options_are_clear_errors(home, tmp_path: Path, args, message):
    result = _run(home, "export", *args, "--out", str(tmp_path / "x"))
    assert result.exit_code != 0 and message in result.output, result.output


def test_an_empty_selection_says_why(home, tmp_path: Path):
    result = _run(home, "export", "--sites", "gelbooru", "--out", str(tmp_path / "x"))
    assert result.exit_code == 0, result.output
    assert (
        "no post matches the filter" in result.output and "0 captions in 0 shards" in result.output
    )


def test_a_missing_catalog_says_to_run_the_pipeline(tmp_path: Path):
    result = CliRunner().invoke(
        cli, ["--home", str(tmp_path), "export", "--out", str(tmp_path / "x")]
    )
    assert result.exit_code == 1 and "run the pipeline first" in result.output


def test_the_cli_knows_every_format_and_names_every_shipped_vocabulary():
    from assets.captions.formats import FORMATS as EXPORT_FORMATS
    from assets.captions.vocabulary import shipped

    style = next(p for p in export.params if p.name == "style")
    assert FORMATS == EXPORT_FORMATS
    assert shipped() == ["animagine", "none", "noobai", "pony-v6", "pony-v7"]
    assert all(name in style.help for name in shipped())
