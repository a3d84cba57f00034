"""`scoretag backbone convert-openai`: OpenAI's CLIP files as open_clip state dicts."""

from __future__ import annotations

from pathlib import Path

import click

from scoretag.cli.common import console


@click.group()
def backbone() -> None:
    """Backbone weights: convert OpenAI's CLIP files."""


@backbone.command(name="convert-openai")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--model",
    default="ViT-L-14",
    show_default=True,
    help="The open_clip model the file is OpenAI's weights of.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The .safetensors file to write (replaced if it exists).",
)
def convert_openai_command(path: Path, model: str, out: Path) -> None:
    """Convert OpenAI's TorchScript CLIP file (e.g. ViT-L-14.pt) into an open_clip state dict.

    PATH must be the very file OpenAI published: its sha256 is checked against the one in
    OpenAI's download URL (open_clip's pretrained table holds it). The weights are read with
    open_clip's OpenAI loader (QuickGELU, no JIT) and written unchanged as safetensors, which
    `[backbone] checkpoint` loads with `pretrained = "openai"` beside it.
    """
    from orchestration.weights import convert_openai

    if out.suffix != ".safetensors":
        raise click.ClickException(f"--out {out}: give a file name ending in .safetensors")
    try:
        with console.status(f"checking and converting {path.name}..."):
            done = convert_openai(path, model, out)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    console.print(
        f"Converted OpenAI's {model} ({path.name}, sha256 {done['source_sha256']}) into {out}: "
        f"{done['tensors']} tensors, {done['bytes'] / 2**20:,.0f} MiB, sha256 "
        f"{done['out_sha256']}.",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    console.print("Use it with these lines in the [backbone] table of your config file:")
    console.print(
        f'model = "{model}"\npretrained = "openai"\ncheckpoint = "{out.resolve()}"',
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        "The backbone is then OpenAI's weights (heads made for them, like LAION's, activate), "
        "loaded from this file without network.",
        markup=False,
    )
