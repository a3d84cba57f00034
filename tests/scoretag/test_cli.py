import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from scoretag.cli import cli

SCORETAG = Path(sys.executable).parent / "scoretag"


def test_help_lists_every_command_on_one_line():
    result = subprocess.run([str(SCORETAG), "--help"], capture_output=True, text=True, check=True)
    commands = result.stdout.split("Commands:\n", 1)[1].strip().splitlines()
    names = [line.split()[0] for line in commands]
    assert names == sorted(cli.commands)
    assert {"demo", "ui", "bench", "info", "run"} <= set(names)
    for line in commands:
        assert not line.rstrip().endswith("..."), f"help line cut short: {line!r}"


def test_every_subcommand_has_help():
    runner = CliRunner()
    for name, command in cli.commands.items():
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert command.get_short_help_str(limit=200)


def test_info_shows_the_storage_root(tmp_path: Path):
    result = CliRunner().invoke(cli, ["--home", str(tmp_path), "info"])
    assert result.exit_code == 0, result.output
    assert str(tmp_path) in result.output and "untrained" in result.output


def test_unknown_profile_is_a_clear_error():
    result = CliRunner().invoke(cli, ["--profile", "prod", "info"])
    assert result.exit_code == 1
    assert "unknown profile 'prod': choose one of demo, k8s, production" in result.output


def test_demo_commands_refuse_a_profile_without_demo_data(tmp_path: Path):
    result = CliRunner().invoke(
        cli, ["--profile", "production", "--home", str(tmp_path), "demo", "build"]
    )
    assert result.exit_code == 1
    assert "has no demo data: use --profile demo" in result.output
