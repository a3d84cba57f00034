"""The [captions] settings, and the export request made from them and the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from assets.captions.requests import request_for
from orchestration.profile import load_profile
from orchestration.settings import ProfileError, load_settings


def test_the_command_line_wins_over_the_settings(tmp_path: Path):
    profile = load_profile("demo", tmp_path)
    request = request_for(
        profile, "jsonl", tmp_path / "out", style="v7", min_bucket=6, ratings=("g",), shard_size=7
    )
    assert request.rules.style == "v7" and request.rules.min_bucket == 6
    assert request.where.min_bucket == 6 and request.where.ratings == ("g",)
    assert request.where.sites == () and request.target.shard_size == 7
    assert request.rules.source_tags["e621"] == "source_furry"  # from the demo profile
    assert request.policy.name == "quantile"
    assert request.command == (
        f"scoretag --profile demo export --format jsonl --style v7 --min-bucket 6 "
        f"--ratings g --shard-size 7 --out {tmp_path / 'out'}"
    )


def test_settings_fill_what_the_command_line_leaves(tmp_path: Path):
    config = tmp_path / "c.toml"
    config.write_text(
        '[captions]\nstyle = "none"\nmin_bucket = 3\nsites = ["e621"]\npolicy = "absolute"\n'
        'calibration_sites = ["e621"]\nshard_size = 123\n'
    )
    profile = load_profile("demo", tmp_path, config)
    request = request_for(profile, "parquet", tmp_path / "out")
    assert (request.rules.style, request.rules.min_bucket) == ("none", 3)
    assert request.where.sites == ("e621",) and request.target.shard_size == 123
    assert request.policy.name == "absolute" and request.policy.sites == ("e621",)
    assert f"--config {config}" in request.command


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cut_points = [0.5, 0.6]", r"captions\.cut_points: .*8 values"),
        ("cut_points = [0.9, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]", "cut points must rise"),
        ("min_bucket = 0", r"captions\.min_bucket"),
        ("style = 'v5'", r"captions\.style"),
        ("formats = ['csv']", r"captions\.formats"),
        ("formats = []", "at least one format"),
        ("rating_tags = { g = 'safe' }", "give a tag for every rating"),
        ("ratings = ['x']", r"captions\.ratings"),
        ("caption_extension = 'txt'", r"captions\.caption_extension"),
        ("sidecar_layout = 'next'", r"captions\.sidecar_layout"),
    ],
)
def test_bad_caption_settings_are_refused_with_the_field_named(tmp_path: Path, text, message):
    config = tmp_path / "bad.toml"
    config.write_text(f"[captions]\n{text}\n")
    with pytest.raises(ProfileError, match=message):
        load_settings("demo", config)
