"""Two evaluation sets drawn from the demo images, as stand-ins for two checkpoints' samples.

`demo-clean` holds pristine demo pictures, `demo-degraded` the same pictures blurred, noised,
JPEG-crushed or downscaled at a high level: a "checkpoint" whose samples got worse. Both lay
out the same prompts (a folder each, from the picture's style and subject) and the same seeds,
listed in a prompts.jsonl, so their images compare as pairs. The degraded set also holds one
file cut short, which the evaluation lists as a failure. The demo's backbone is untrained:
the scores show the workflow, not a real quality difference.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image

from orchestration.atomic import write_bytes
from scoretag.demo.degrade import KINDS, degrade

CLEAN, DEGRADED = "demo-clean", "demo-degraded"
SETS = (CLEAN, DEGRADED)
PROMPTS = 8
PER_PROMPT = 4
LEVEL = 3  # the degraded set's level of each degradation (of 4)
BROKEN = "unfinished.png"  # the degraded set's truncated file


def _png(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def chosen_pictures(images: pl.DataFrame) -> pl.DataFrame:
    """Up to PER_PROMPT pictures of each of the PROMPTS commonest (style, subject) pairs,
    the least degraded first (pristine ones, at the default demo size), with their prompt and
    seed (their rank within the prompt)."""
    usable = images.filter(pl.col("usable") & (pl.col("special") == ""))
    ranked = usable.sort("level", "image_id").with_columns(
        seed=pl.int_range(pl.len()).over("style", "subject")
    )
    kept = ranked.filter(pl.col("seed") < PER_PROMPT)
    top = (
        kept.group_by("style", "subject")
        .agg(pl.len(), pl.col("level").sum())
        .sort(["len", "level", "style", "subject"], descending=[True, False, False, False])
        .head(PROMPTS)
    )
    return (
        kept.join(top.select("style", "subject"), on=["style", "subject"])
        .sort("style", "subject", "seed")
        .with_columns(
            prompt=pl.when(pl.col("style") == pl.col("origin"))
            .then(pl.format("{}, {}", "origin", "subject"))
            .otherwise(pl.format("{} {}, {}", "style", "origin", "subject"))
            .str.replace_all("_", " "),
            folder=pl.format("{}-{}", "style", "subject"),
        )
    )


def _planned(image_root: Path, images: pl.DataFrame, seed: int) -> dict[Path, bytes]:
    """Every file of both sets, by its path relative to the evaluations folder."""
    chosen = chosen_pictures(images)
    rng = np.random.default_rng([seed, 20])
    files: dict[Path, bytes] = {}
    lines = []
    for i, row in enumerate(chosen.iter_rows(named=True)):
        name = f"{row['folder']}/seed-{row['seed']}.png"
        with Image.open(image_root / row["file_name"]) as img:
            picture = img.convert("RGB")
        files[Path(CLEAN, name)] = _png(picture)
        files[Path(DEGRADED, name)] = _png(degrade(picture, KINDS[i % len(KINDS)], LEVEL, rng))
        lines.append({"file": name, "prompt": row["prompt"], "seed": row["seed"]})
    listing = "".join(json.dumps(line) + "\n" for line in lines).encode()
    for folder in SETS:
        files[Path(folder, "prompts.jsonl")] = listing
    whole = _png(Image.new("RGB", (64, 64), (200, 120, 40)))
    files[Path(DEGRADED, BROKEN)] = whole[: len(whole) // 2]
    return files


def write_evaluation_sets(image_root: Path, images: pl.DataFrame, out: Path, seed: int) -> dict:
    """Write both sets under `out` (the profile's evaluations folder); returns their folders.
    A file already holding its bytes is left alone, so a rebuild leaves the sets unchanged
    (and not evaluated again); files of an earlier build that this one has not are removed."""
    files = _planned(image_root, images, seed)
    for folder in SETS:
        if (out / folder).is_symlink():  # a set the user linked under the demo's name
            (out / folder).unlink()
    for old in [p for folder in SETS for p in (out / folder).rglob("*") if p.is_file()]:
        if old.relative_to(out) not in files:
            old.unlink()
    for relative, data in files.items():
        path = out / relative
        if not path.is_file() or path.read_bytes() != data:
            write_bytes(path, data)
    return {folder: out / folder for folder in SETS}
