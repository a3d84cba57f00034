from pathlib import Path

import pytest

from orchestration.settings import ProfileError, available_profiles, load_settings
from orchestration.storage import Layout, resolve_home


def test_the_profiles_ship_and_load():
    assert available_profiles() == ["demo", "k8s", "production"]
    demo, production = load_settings("demo"), load_settings("production")
    assert demo.backbone.model == "scoretag-tiny" and not demo.backbone.trained
    assert demo.demo is not None and demo.demo.images == 600
    assert production.backbone.model == "ViT-L-14"
    assert production.backbone.pretrained == "openai" and production.backbone.trained
    assert production.backbone.device == "auto" and production.demo is None


def test_profile_comes_from_environment_when_not_given(monkeypatch):
    monkeypatch.setenv("SCORETAG_PROFILE", "production")
    assert load_settings().name == "production"
    assert load_settings("demo").name == "demo"


def test_default_profile_is_demo():
    assert load_settings().name == "demo"


def test_unknown_profile_names_the_known_ones():
    with pytest.raises(ProfileError, match="unknown profile 'prod'.*demo, k8s, production"):
        load_settings("prod")


def test_config_file_overrides_profile(tmp_path: Path):
    config = tmp_path / "site.toml"
    config.write_text('image_root = "/data/images"\n[backbone]\ncheckpoint = "/m/vitl14.pt"\n')
    settings = load_settings("production", config)
    assert settings.backbone.checkpoint == "/m/vitl14.pt"
    assert settings.backbone.model == "ViT-L-14"  # untouched fields keep the profile's value
    assert settings.image_root == "/data/images"


def test_a_checkpoint_alone_counts_as_trained(tmp_path: Path):
    config = tmp_path / "c.toml"
    config.write_text('[backbone]\npretrained = ""\ncheckpoint = "/m/w.pt"\n')
    assert load_settings("production", config).backbone.trained


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[backbone\nmodel = 1", "not valid TOML"),
        ("[backbone]\nmodle = 'x'", r"backbone\.modle: Extra inputs are not permitted"),
        ("[backbone]\nprecision = 'fp8'", r"backbone\.precision"),
        ("[backbone]\nbatch_size = 0", r"backbone\.batch_size"),
        ("gpu_slots = 'many'", "gpu_slots"),
    ],
)
def test_malformed_config_gets_a_clear_error(tmp_path: Path, text: str, message: str):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(ProfileError, match=message) as error:
        load_settings("demo", config)
    assert str(config) in str(error.value)


def test_missing_config_file_is_named(tmp_path: Path):
    with pytest.raises(ProfileError, match="config file not found: .*nowhere.toml"):
        load_settings("demo", tmp_path / "nowhere.toml")


def test_home_defaults_to_dot_scoretag_per_profile(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_home("demo") == tmp_path / ".scoretag" / "demo"
    monkeypatch.setenv("SCORETAG_HOME", "relative/root")
    assert resolve_home("demo") == tmp_path / "relative" / "root"  # always absolute
    assert resolve_home("demo", tmp_path / "x") == tmp_path / "x"


def test_layout_puts_everything_under_the_root(tmp_path: Path):
    layout = Layout(home=tmp_path).ensure()
    for path in (layout.dagster_home, layout.inbox / "e621", layout.images, layout.data):
        assert path.is_dir() and tmp_path in path.parents
    assert layout.catalog == tmp_path / "catalog.duckdb"
    assert layout.label_store == tmp_path / "labels.sqlite"
    assert (
        Layout(home=tmp_path, image_root_override=str(tmp_path / "img")).images == tmp_path / "img"
    )


def test_the_stages_defaults_are_the_settings_defaults():
    """Pure stage code has its own config dataclasses (no settings import); their defaults
    must not drift from what a profile gives."""
    from assets.embeddings.embed import Plan
    from assets.head.assets import train_settings
    from assets.head.jobs import UncertaintyRoundConfig
    from assets.head.models import MLPConfig
    from assets.head.uncertainty import RoundSettings
    from orchestration.settings import EmbedSettings, HeadSettings

    head = HeadSettings()
    assert train_settings(head).mlp == MLPConfig()
    assert UncertaintyRoundConfig().settings(head) == RoundSettings()
    embed = EmbedSettings()
    plan = Plan()
    assert (plan.prefetch, plan.shard_size, plan.max_pixels, plan.jpeg_draft) == (
        embed.prefetch,
        embed.shard_size,
        embed.max_pixels,
        embed.jpeg_draft,
    )
