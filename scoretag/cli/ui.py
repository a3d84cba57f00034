"""`scoretag ui`."""

from __future__ import annotations

import os
import shutil
import sys

import click

from orchestration.profile import activate, set_pool_limits
from scoretag.cli.common import console, current_profile

WORKSPACE = """\
# Written by `scoretag ui`: the same code location as the repository's workspace.yaml.
load_from:
  - python_module:
      module_name: orchestration.definitions
      location_name: scoretag
"""


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=3000, show_default=True, type=int, help="Port of the web UI.")
def ui(host: str, port: int) -> None:
    """Start the Dagster web UI (dagster dev) on this profile.

    Stop it with Ctrl-C.
    """
    profile = current_profile()
    activate(profile)
    set_pool_limits(profile)
    workspace = profile.layout.dagster_home / "workspace.yaml"
    workspace.write_text(WORKSPACE)
    dagster = shutil.which("dagster", path=os.path.dirname(sys.executable)) or "dagster"
    console.print(
        f"[bold]scoretag ui[/] on profile [cyan]{profile.name}[/], "
        f"storage root {profile.layout.home}"
    )
    console.print(f"Open http://{host}:{port}/asset-groups once it says it is serving.")
    os.execvp(dagster, [dagster, "dev", "-w", str(workspace), "-h", host, "-p", str(port)])
