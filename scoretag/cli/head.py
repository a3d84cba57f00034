"""`scoretag head import-laion|import-v25|predict|list|activate`: aesthetic heads outside the
pipeline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import numpy as np
from rich import box
from rich.table import Table

from orchestration.atomic import atomic_path
from scoretag.cli.common import console, current_profile

if TYPE_CHECKING:
    from assets.head.artifact import Head
    from assets.head.registry import Registry

# Heads need torch, imported here only when a head command runs: every other command (and
# `scoretag --help`) starts without it.


def registry() -> Registry:
    """The current profile's head registry."""
    from assets.head import paths

    return paths.registry(current_profile().layout)


@click.group()
def head() -> None:
    """Aesthetic heads: import, predict, list, activate."""


_OUT = click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write the head to (replaced if it exists).",
)
_REGISTER = click.option(
    "--register/--no-register",
    default=True,
    show_default=True,
    help="Also add the head to the profile's registry (it is not activated).",
)


@head.command(name="import-laion")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_OUT
@_REGISTER
def import_laion_command(path: Path, out: Path, register: bool) -> None:
    """Convert a LAION aesthetic predictor .pth into a head.

    PATH is a state dict of improved-aesthetic-predictor (linearMSE or reluMSE layout), read
    with torch.load(weights_only=True). The head scores (rating - 1) / 9, clipped to [0, 1].
    """
    _import_published(path, out, register, "laion")


@head.command(name="import-v25")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_OUT
@_REGISTER
def import_v25_command(path: Path, out: Path, register: bool) -> None:
    """Convert Aesthetic Predictor V2.5's head .pth into a head.

    PATH is the state dict of V2.5's scoring head (aesthetic_predictor_v2_5.pth, AGPL-3.0),
    read with torch.load(weights_only=True). It scores SigLIP so400m-patch14-384 embeddings
    ([backbone] model = "ViT-SO400M-14-SigLIP-384", pretrained = "webli"); the head scores
    (rating - 1) / 9, clipped to [0, 1].
    """
    _import_published(path, out, register, "v25")


def _import_published(path: Path, out: Path, register: bool, family: str) -> None:
    from assets.head.artifact import save_head
    from assets.head.published import published_card, read_published

    try:
        net, layout = read_published(path, family)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    written = save_head(net, published_card(net, layout, path), out)
    shown = layout.name.removeprefix("laion-")
    console.print(f"Imported {path.name}: layout {shown}, version {written.version}, into {out}")
    if register:
        registry().add(out)
        console.print(
            f"Registered {written.version}; make it the active head with "
            f"`scoretag head activate {written.version}`."
        )


@head.command()
@click.option(
    "--head",
    "head_ref",
    required=True,
    metavar="DIR_OR_VERSION",
    help="A head directory, or a version (or unique prefix) in the registry.",
)
@click.option(
    "--embeddings",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An (n, dim) .npy array, or a .parquet file with an `embedding` column.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The .npy file to write the n float32 scores to.",
)
def predict(head_ref: str, embeddings: Path, out: Path) -> None:
    """Score embeddings with a head: float32 in [0, 1] per row.

    Rows are L2-normalised first. A parquet file needs an `embedding` column: fixed-size
    binary fp16 (an embedding shard) or a list of floats.
    """
    model = find_head(head_ref)
    vectors = read_embeddings(embeddings, model)
    if vectors.ndim != 2 or vectors.shape[1] != model.input_dim:
        raise click.ClickException(
            f"{embeddings}: embeddings of shape {vectors.shape}, but head {model.version} takes "
            f"{model.input_dim}-d vectors (n, {model.input_dim})"
        )
    scores = model.predict(vectors)
    with atomic_path(out) as tmp, tmp.open("wb") as f:
        # A file object, not a path: np.save would add ".npy" to the temporary name.
        np.save(f, scores)
    if len(scores):
        console.print(
            f"Scored {len(scores)} embeddings with head {model.version} into {out}: "
            f"min {scores.min():.4f}, mean {scores.mean():.4f}, max {scores.max():.4f}"
        )
    else:
        console.print(f"Scored 0 embeddings with head {model.version} into {out}")


@head.command(name="list")
@click.option(
    "--gate",
    "gate_version",
    metavar="VERSION",
    default=None,
    help="Show the quality gate of one head (a version or a unique prefix): both heads side "
    "by side, the labels compared on, and the reason.",
)
def list_heads(gate_version: str | None) -> None:
    """List the registered heads; * marks the active one. The "vs active" column: the gate's
    verdict, and the new head's Spearman against the head active then."""
    heads = registry()
    if gate_version is not None:
        show_gate(heads, gate_version)
        return
    cards = heads.cards()
    if not cards:
        console.print(
            f"No heads in {heads.dir} yet: `scoretag head import-laion` or `import-v25` adds one."
        )
        return
    active = heads.active_version()
    console.print(f"Aesthetic heads in {heads.dir}:")
    # Compact, so that version, date and type still fit whole in an 80-column terminal.
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    table.add_column("", no_wrap=True)  # "*" on the active head
    for column in ("version", "created", "type", "backbone", "labels", "CV spearman", "vs active"):
        table.add_column(column, no_wrap=column in ("version", "created", "type", "vs active"))
    for card in cards:
        backbone = card.get("backbone") or {}
        table.add_row(
            "*" if card["version"] == active else "",
            card["version"],
            str(card.get("created_at", "-"))[:16].replace("T", " "),
            str(card.get("head_type", "-")),
            f"{backbone.get('model', '?')} {backbone.get('weights', '?')}",
            label_count(card.get("labels")),
            cv_spearman(card),
            versus_active(heads.gate(card["version"])),
        )
    console.print(table)
    if active is None:
        console.print("No head is active: `scoretag head activate VERSION` picks one.")
    else:
        console.print(f"* active: {active}")


@head.command()
@click.argument("version")
def activate(version: str) -> None:
    """Make head VERSION (or a unique prefix) the active one.

    The head must have been made for the profile's backbone: the catalog scores cached
    embeddings of that backbone with it."""
    from dataclasses import asdict

    from assets.head.artifact import BackboneMismatch, require_backbone
    from orchestration.backbone import identity

    heads = registry()
    try:
        chosen = heads.load(version)
        require_backbone(chosen, asdict(identity(current_profile().settings.backbone)))
    except KeyError as e:
        # KeyError quotes its message: the registry's text says which versions it knows.
        raise click.ClickException(str(e.args[0])) from None
    except (BackboneMismatch, FileNotFoundError) as e:  # also: the backbone's checkpoint
        raise click.ClickException(f"not activated: {e}") from None
    full = heads.activate(chosen.version, reason="activated by hand")
    console.print(f"Active head: {full}")
    console.print(
        "The next catalog run (`scoretag run`, the `catalog` job, or the daily_rescore "
        "schedule) scores every post under it from cached embeddings; older scores are kept."
    )


@head.command(name="uncertainty-round")
@click.option("--size", type=int, default=None, help="Posts to add. [default: [head] round_size]")
@click.option(
    "--models", type=int, default=None, help="Bootstrap heads. [default: [head] round_models]"
)
@click.option(
    "--max-cosine",
    type=float,
    default=None,
    help="Skip posts more similar than this to one chosen or labelled (near-duplicates). "
    "[default: [head] near_duplicate_cosine]",
)
@click.option("--seed", type=int, default=None, help="[default: [head] seed]")
def uncertainty_round(
    size: int | None, models: int | None, max_cosine: float | None, seed: int | None
) -> None:
    """Append to the rating pool the posts the heads disagree on most (active learning)."""
    from assets.head.jobs import JOB
    from orchestration.definitions import build_defs
    from orchestration.runner import run_job
    from scoretag.cli.summary import print_runs

    profile = current_profile()
    given = {"size": size, "models": models, "max_cosine": max_cosine, "seed": seed}
    config = {k: v for k, v in given.items() if v is not None}
    run_config = {"ops": {"add_uncertainty_round_op": {"config": config}}}
    with console.status("choosing the uncertainty round..."):
        outcome = run_job(profile, build_defs(profile), JOB, run_config)
    print_runs(outcome)
    for materialization in outcome.materializations:
        meta = materialization.get("metadata", {})
        if "added_this_run" in meta:
            console.print(f"rating_pool: {meta['added_this_run']} posts added")
    if not outcome.success:
        raise click.ClickException("the uncertainty round failed: see above")


def find_head(ref: str) -> Head:
    """The head in directory `ref` if there is one, else the registry's version `ref`."""
    from assets.head.artifact import load_head

    try:
        if Path(ref).is_dir():
            return load_head(Path(ref))
        return registry().load(ref)
    except KeyError as e:
        raise click.ClickException(f"{ref} is not a directory, and {e.args[0]}") from None
    except (FileNotFoundError, ValueError) as e:
        raise click.ClickException(str(e)) from None


def read_embeddings(path: Path, model: Head) -> np.ndarray:
    """An (n, dim) array from a .npy file or from a parquet file's `embedding` column."""
    if path.suffix == ".npy":
        try:
            vectors = np.load(path, allow_pickle=False)
        except ValueError as e:
            raise click.ClickException(f"{path}: not a plain numeric .npy array ({e})") from None
        if not np.issubdtype(vectors.dtype, np.number):
            raise click.ClickException(f"{path}: holds {vectors.dtype}, not numbers")
        return vectors
    if path.suffix == ".parquet":
        return read_parquet_embeddings(path, model)
    raise click.ClickException(f"{path}: give a .npy or a .parquet file")


def read_parquet_embeddings(path: Path, model: Head) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from assets.embeddings.store import vectors_of

    schema = pq.read_schema(path)
    if "embedding" not in schema.names:
        raise click.ClickException(f"{path}: no `embedding` column (has {schema.names})")
    check_backbone(path, schema.metadata or {}, model)
    column = pq.read_table(path, columns=["embedding"])["embedding"].combine_chunks()
    if column.null_count:
        raise click.ClickException(f"{path}: {column.null_count} embeddings are null")
    kind = column.type
    if pa.types.is_fixed_size_binary(kind):
        # The embedding store's fp16 vectors, 2 bytes a dimension.
        if kind.byte_width != 2 * model.input_dim:
            raise click.ClickException(
                f"{path}: embeddings of {kind.byte_width // 2} dims (fp16), but head "
                f"{model.version} takes {model.input_dim}"
            )
        return vectors_of(column, model.input_dim)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        lengths = np.unique(pc.list_value_length(column).to_numpy(zero_copy_only=False))
        if len(lengths) > 1:
            raise click.ClickException(f"{path}: embeddings of several lengths {lengths[:5]}")
        values = column.flatten()
        if not (pa.types.is_floating(values.type) or pa.types.is_integer(values.type)):
            raise click.ClickException(f"{path}: embedding values are {values.type}, not numbers")
        dim = int(lengths[0]) if len(lengths) else model.input_dim
        return values.to_numpy(zero_copy_only=False).reshape(len(column), dim)
    raise click.ClickException(
        f"{path}: `embedding` is {kind}; expected fixed_size_binary fp16 or a list of floats"
    )


def check_backbone(path: Path, metadata: dict[bytes, bytes], model: Head) -> None:
    """Refuse a shard that names a backbone other than the head's: vectors of another model
    would be scored without error, and the scores would mean nothing."""
    from assets.embeddings.store import IDENTITY_KEY
    from assets.head.artifact import describe_space, same_space, space_of

    raw, expected = metadata.get(IDENTITY_KEY), model.card.get("backbone")
    if raw is None or not expected:
        return
    found = json.loads(raw.decode())
    expected = space_of(model.card)
    if not same_space(found, expected):
        raise click.ClickException(
            f"{path} was embedded by {describe_space(found, expected)}, but head "
            f"{model.version} reads {describe_space(expected, found)} embeddings"
        )


def label_count(labels: Any) -> str:
    """How many labels a card says its head learnt from ("-" for an imported head)."""
    if labels is None:
        return "-"
    if isinstance(labels, dict):
        count = next((labels[k] for k in ("count", "n", "rows") if k in labels), None)
        return "-" if count is None else str(count)
    return str(len(labels)) if isinstance(labels, list) else str(labels)


# "vs active" in a few characters, where the heads were not compared: why.
GATE_SHORT = {
    "no_active_head": "first",
    "same_head": "same",
    "other_backbone": "other backbone",
    "no_figures": "no figures",
}


COMPARED_SHORT = ("all_labels", "fresh_labels", "cross_validation")


def versus_active(record: dict | None) -> str:
    """A head's gate in a few characters: pass or FAIL, and its Spearman against the active
    head's (e.g. "FAIL .30<.58"; `--gate VERSION` says on which labels) or why there was no
    comparison; "-" for a head never gated (imported, or trained before comparisons were
    kept)."""
    if record is None:
        return "-"
    gate = record["gate"]
    verdict = "pass" if gate["passed"] else "FAIL"
    versus = gate.get("versus")
    if not versus:
        return verdict
    method = versus["method"]
    short = GATE_SHORT.get(method, method)
    if method not in COMPARED_SHORT:
        return f"{verdict}, {short}"
    new, active = float(versus["new_spearman"]), float(versus["active_spearman"])
    sign = "<" if new < active else ">="
    return f"{verdict} {_short(new)}{sign}{_short(active)}"


def _short(value: float) -> str:
    return f"{value:.2f}".replace("0.", ".", 1)


def show_gate(heads: Registry, version: str) -> None:
    """`head list --gate VERSION`: the gate's table and reason for one head."""
    from assets.head.gate import gate_rows

    try:
        full = heads.resolve(version)
    except KeyError as e:
        raise click.ClickException(str(e.args[0])) from None
    record = heads.gate(full)
    if record is None:
        console.print(
            f"Head {full} was never gated: it was imported, or trained before the gate kept "
            "its comparisons."
        )
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    heads_side_by_side = gate_rows(record)  # one row per head: shown here as columns
    table.add_column("")
    for row in heads_side_by_side:
        table.add_column(str(row.pop("head")))
    for field in heads_side_by_side[0]:
        values = [row[field] for row in heads_side_by_side]
        table.add_row(field, *(f"{v:.3f}" if isinstance(v, float) else str(v) for v in values))
    verdict = "passed" if record["gate"]["passed"] else "failed"
    decided = str(record.get("decided_at", "?"))[:16].replace("T", " ")
    console.print(f"Gate of head {full} ({decided}): {verdict}", markup=False)
    console.print(table)
    console.print(record["gate"]["reason"], markup=False, highlight=False)


def cv_spearman(card: dict) -> str:
    try:
        return f"{float(card['metrics']['cv']['head']['overall']['spearman']):.3f}"
    except (KeyError, TypeError, ValueError):
        return "-"
