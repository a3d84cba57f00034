"""`scoretag`: everything a user does outside the Dagster UI."""

from __future__ import annotations

import warnings

import click

from scoretag.cli import (
    backbone,
    bench,
    demo,
    embed,
    evaluate,
    export,
    head,
    images,
    info,
    ingest,
    label,
    query,
    run,
    ui,
)
from scoretag.cli.common import ProfileLoader

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT)
@click.option(
    "--profile",
    envvar="SCORETAG_PROFILE",
    default=None,
    metavar="NAME",
    help="Profile: demo, production or k8s. [env SCORETAG_PROFILE; default demo]",
)
@click.option(
    "--home",
    envvar="SCORETAG_HOME",
    default=None,
    metavar="DIR",
    help="Storage root. [env SCORETAG_HOME; default ./.scoretag/<profile>]",
)
@click.option(
    "--config",
    envvar="SCORETAG_CONFIG",
    default=None,
    metavar="FILE",
    help="TOML file overriding profile settings. [env SCORETAG_CONFIG]",
)
@click.version_option(package_name="scoretag")
@click.pass_context
def cli(ctx: click.Context, profile: str | None, home: str | None, config: str | None) -> None:
    """Score-tagged caption shards from booru metadata, as one Dagster pipeline.

    Run `make demo` for a tour, `scoretag ui` for the Dagster UI.
    """
    ctx.obj = ProfileLoader(profile, home, config)


for command in (
    info.info,
    demo.demo,
    ingest.ingest,
    images.images,
    embed.embed,
    run.run,
    ui.ui,
    bench.bench,
    label.label,
    head.head,
    query.query,
    export.export,
    export.calibrate,
    evaluate.evaluate,
    backbone.backbone,
):
    cli.add_command(command)


def main() -> None:
    # Dagster warns at import that partitioned asset checks (raw_posts is checked per raw file)
    # are a preview: meant for the project's developers, not for someone ingesting a file.
    warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec")
    cli(prog_name="scoretag")
