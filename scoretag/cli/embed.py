"""`scoretag embed PATH... --out FILE.parquet`: image files, folders and tar shards through
the profile's backbone, into one parquet file laid out as an embedding shard."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from scoretag.cli.common import console, current_profile

SHOWN_FAILURES = 10


def failures_path(out: Path) -> Path:
    """Where the images that could not be embedded are listed, beside `out`."""
    return out.with_name(f"{out.name.removesuffix('.parquet')}.failures.parquet")


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The .parquet file to write (image_key, path, embedding). Failures go beside it, "
    "to <stem>.failures.parquet.",
)
@click.option(
    "--workers",
    default=None,
    help="Decoding processes: a number, or auto. [default: [embed] workers]",
)
@click.option(
    "--batch-size",
    type=int,
    default=None,
    help="Images per model batch. [default: [backbone] batch_size]",
)
@click.option(
    "--device",
    default=None,
    help="auto, cpu, mps, cuda (a free GPU) or cuda:N. [default: [backbone] device]",
)
def embed(
    paths: tuple[Path, ...],
    out: Path,
    workers: str | None,
    batch_size: int | None,
    device: str | None,
) -> None:
    """Embed images, folders and tar shards into one parquet file.

    Writes one row per image to OUT as an embedding shard has it: `image_key` (the md5 or
    sha512 that names the file or tar member, else its path), `path` (the file, or
    <shard>/<member>), and `embedding` (fp16, unit length, fixed-size binary), with the
    backbone's identity in the parquet metadata. `scoretag head predict --embeddings OUT`
    scores them. An image that cannot be used is listed, with its reason, in
    <stem>.failures.parquet and below; it is never dropped silently.
    """
    from pydantic import ValidationError

    from assets.embeddings.dataset import resolve_workers
    from assets.embeddings.embed import Plan, embed_to_file
    from assets.images.given import given_images
    from orchestration.atomic import write_parquet
    from orchestration.backbone import load_backbone
    from orchestration.devices import claim_device, describe
    from scoretag.cli.progress import image_bars

    if out.suffix != ".parquet":
        raise click.ClickException(f"--out {out}: give a .parquet file")
    profile = current_profile()
    settings = profile.settings
    try:
        backbone_settings = settings.backbone.model_copy(
            update={
                k: v
                for k, v in {"batch_size": batch_size, "device": device}.items()
                if v is not None
            }
        )
        backbone_settings = type(backbone_settings)(**backbone_settings.model_dump())
    except ValidationError as e:
        raise click.ClickException(f"--device/--batch-size: {e.errors()[0]['msg']}") from None
    images = given_images(list(paths))
    plan = Plan(
        batch_size=backbone_settings.batch_size,
        workers=resolve_workers(workers if workers is not None else settings.embed.workers),
        prefetch=settings.embed.prefetch,
        shard_size=settings.embed.shard_size,
        max_pixels=settings.embed.max_pixels,
        jpeg_draft=settings.embed.jpeg_draft,
    )
    try:
        with console.status(f"loading {backbone_settings.model}..."):
            chosen = claim_device(backbone_settings.device, profile.layout.home, console.print)
            backbone = load_backbone(backbone_settings.model_copy(update={"device": chosen}))
    except (RuntimeError, FileNotFoundError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    console.print(
        escape(
            f"{images.height:,} images with {backbone.identity.id} on "
            f"{describe(backbone.device)} ({backbone.precision}), {plan.workers} decoding workers"
        ),
        soft_wrap=True,
    )
    with image_bars() as bars:
        task = bars.add_task("embedding", total=images.height, failed=0)

        def on_batch(progress) -> None:
            bars.update(task, completed=progress.done, failed=progress.failed)

        progress, failures = embed_to_file(images, backbone, plan, out, on_batch)
    failed_at = failures_path(out)
    write_parquet(failures, failed_at)
    console.print(
        escape(
            f"Embedded {progress.embedded:,} images into {out} in {progress.seconds:,.1f} s "
            f"({progress.images_per_s:,.1f} images/s); {progress.failed:,} failed"
        ),
        soft_wrap=True,
    )
    if failures.height:
        by_reason = failures["reason"].value_counts(sort=True)
        console.print("  by reason: " + ", ".join(f"{r} {n:,}" for r, n in by_reason.iter_rows()))
        for path, reason, detail in (
            failures.head(SHOWN_FAILURES).select("path", "reason", "detail").iter_rows()
        ):
            console.print(escape(f"  {reason:<13} {path}  {detail}"), soft_wrap=True)
        more = failures.height - SHOWN_FAILURES
        rest = f"and {more:,} more; " if more > 0 else ""
        console.print(escape(f"  {rest}all listed in {failed_at}"), soft_wrap=True)
