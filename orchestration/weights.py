"""A backbone's weights: which network they need, where they come from, and what a local file
holds.

- **The network for the weights.** open_clip's pretrained table says, per tag, the options the
  weights were trained with: preprocessing (mean, std, interpolation, resize mode) and the
  activation (`quick_gelu`). OpenAI's CLIP weights were trained with QuickGELU while the
  `ViT-L-14` config builds GELU; open_clip only warns about the mismatch. Here the tag's
  activation is built, and a model config that says otherwise is an error naming both.
- **Local files.** A checkpoint is an open_clip state dict (`.safetensors`, or a `.pt`/`.bin`
  read with `torch.load(weights_only=True)`). OpenAI's own `.pt` files are TorchScript
  archives: they are refused, with the command that converts them (`convert_openai`, which
  checks the file against the sha256 OpenAI publishes in its download URL).
- **The Hugging Face cache.** With `HF_HUB_OFFLINE=1`, a tag loads from a pre-filled cache
  or fails saying which repository and file it looked for.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import struct
import zipfile
from pathlib import Path
from typing import Any

QUICK_GELU = "quick_gelu"
GELU = "gelu"
# GELU's tanh approximation: what big_vision, where Google trained SigLIP, computes (flax's
# nn.gelu), and what Hugging Face's SigLIP (`gelu_pytorch_tanh`) runs; timm's SigLIP towers
# build the exact GELU.
GELU_TANH = "gelu_tanh"
QUICKGELU_SUFFIX = "-quickgelu"
CONVERT_COMMAND = "scoretag backbone convert-openai {path} --model {model} --out {out}"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def activation_name(quick_gelu: bool) -> str:
    return QUICK_GELU if quick_gelu else GELU


def describe_activation(quick_gelu: bool) -> str:
    return "QuickGELU" if quick_gelu else "GELU"


def needs_gelu_tanh(config: dict) -> bool:
    """Whether a model config's image tower is one of timm's SigLIP ports (`*siglip*`): their
    weights were trained with GELU's tanh approximation, which timm builds as the exact GELU.
    The difference is small per layer but not nothing over 27 (V2.5's head, trained on the
    original network's features, would score slightly different vectors)."""
    timm_name = str((config.get("vision_cfg") or {}).get("timm_model_name") or "")
    return "siglip" in timm_name.lower()


def use_gelu_tanh(model: Any) -> None:
    """Every exact GELU of a built model (both towers) made the tanh approximation, in place:
    the network SigLIP's weights were trained in."""
    import torch

    for module in list(model.modules()):
        for name, child in module.named_children():
            if isinstance(child, torch.nn.GELU) and child.approximate == "none":
                setattr(module, name, torch.nn.GELU(approximate="tanh"))


# --- the activation the weights need ------------------------------------------------------


def tag_config(model: str, tag: str) -> dict[str, Any]:
    """open_clip's pretrained config of `tag` for `model`; ValueError when open_clip has none,
    naming the known tags, or the config the tag belongs to when the name differs only by
    `-quickgelu` (and whether the two build different activations)."""
    import open_clip

    found = open_clip.get_pretrained_cfg(model, tag)
    if found:
        return dict(found)
    sibling = (
        model.removesuffix(QUICKGELU_SUFFIX)
        if model.endswith(QUICKGELU_SUFFIX)
        else model + QUICKGELU_SUFFIX
    )
    theirs = open_clip.get_pretrained_cfg(sibling, tag)
    config = open_clip.get_model_config(model)
    if theirs and config is not None:
        needed = needs_quick_gelu(sibling, open_clip.get_model_config(sibling) or {}, tag, theirs)
        built = bool(config.get("quick_gelu", False))
        if needed != built:
            raise ValueError(
                f"model config {model} builds {describe_activation(built)}, but the {tag!r} "
                f"weights (open_clip lists them under {sibling}) were trained with "
                f"{describe_activation(needed)}: set [backbone] model = {sibling!r}"
            )
        raise ValueError(
            f"open_clip lists the {tag!r} weights under {sibling}, not {model}: set "
            f"[backbone] model = {sibling!r}"
        )
    known = ", ".join(open_clip.list_pretrained_tags_by_model(model)) or "none"
    raise ValueError(
        f"open_clip has no pretrained weights {tag!r} for {model} (known tags: {known})"
    )


def needs_quick_gelu(model: str, config: dict, tag: str, tag_cfg: dict) -> bool:
    """Whether the network for these weights uses QuickGELU. The tag's `quick_gelu` says what
    the weights were trained with; where the table says nothing, the model config decides (as
    it was written for the weights listed under its name). A model config and a tag that both
    say, and disagree, are an error naming both."""
    said_by_config = config.get("quick_gelu")
    said_by_tag = tag_cfg.get("quick_gelu") if tag_cfg else None
    if said_by_tag is None:
        return bool(said_by_config)
    if said_by_config is not None and bool(said_by_config) != bool(said_by_tag):
        raise ValueError(
            f"model config {model} sets quick_gelu={bool(said_by_config)} "
            f"({describe_activation(bool(said_by_config))}), but the {tag!r} weights were "
            f"trained with {describe_activation(bool(said_by_tag))} (open_clip's pretrained "
            f"table): the network would not be the one the weights belong to"
        )
    return bool(said_by_tag)


def built_activation(model: Any) -> str | None:
    """The activation in the MLPs of a built open_clip model's transformer blocks (open_clip's
    own, `mlp.gelu`, and timm's, `mlp.act`): "gelu", "quick_gelu", "gelu_tanh", "mixed" (more
    than one), or None (no such blocks, e.g. an HF tower)."""
    import torch
    from open_clip.transformer import QuickGELU

    kinds = set()
    for module in model.modules():
        mlp = getattr(module, "mlp", None)
        if mlp is None:
            continue
        act = getattr(mlp, "gelu", None) or getattr(mlp, "act", None)
        if isinstance(act, QuickGELU):
            kinds.add(QUICK_GELU)
        elif isinstance(act, torch.nn.GELU):
            kinds.add(GELU_TANH if act.approximate == "tanh" else GELU)
    if not kinds:
        return None
    return kinds.pop() if len(kinds) == 1 else "mixed"


# --- local checkpoints --------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file, computed once per path, size and modification time."""
    path = Path(path).expanduser().resolve()
    stat = path.stat()
    return _sha256(str(path), stat.st_size, stat.st_mtime_ns)


def checkpoint_format(path: Path) -> str:
    """ "safetensors", "torchscript" (a TorchScript archive, as OpenAI's `.pt` files are),
    "torch" (torch.save's zip format) or "torch-legacy" (torch.save's older pickle format);
    ValueError for anything else."""
    with path.open("rb") as f:
        head = f.read(16)
    if len(head) >= 9:
        (length,) = struct.unpack("<Q", head[:8])
        if head[8:9] == b"{" and 0 < length < path.stat().st_size:
            return "safetensors"
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        # torch.jit.save writes code/ and constants.pkl beside data.pkl; torch.save does not.
        if any("/code/" in n or n.endswith("/constants.pkl") for n in names):
            return "torchscript"
        if any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
            return "torch"
        raise ValueError(f"{path}: a zip archive, but not one torch.save or safetensors writes")
    if head[:2] == b"\x80\x02" or head[:1] == b"\x80":
        return "torch-legacy"
    raise ValueError(f"{path}: neither a safetensors file nor a PyTorch checkpoint")


def convert_hint(path: Path, model: str) -> str:
    out = path.with_suffix(".safetensors")
    return CONVERT_COMMAND.format(path=path, model=model, out=out)


def check_checkpoint(path: Path, model: str) -> str:
    """Refuse, with what to do, a checkpoint open_clip cannot load as a plain state dict;
    returns its format. A pickle is read here with weights_only=True (memory-mapped, so it
    costs little) before open_clip reads it: the file is known to be safe and loadable."""
    import pickle

    import torch

    kind = checkpoint_format(path)
    if kind == "torchscript":
        raise ValueError(
            f"{path} is a TorchScript archive (OpenAI's original CLIP .pt), not a state dict: "
            f"it cannot be loaded with weights_only=True. Convert it once with "
            f"`{convert_hint(path, model)}` and point [backbone] checkpoint at the new file"
        )
    is_safetensors = path.suffix == ".safetensors"
    if kind == "safetensors" and not is_safetensors:
        raise ValueError(f"{path} is a safetensors file: rename it to end in .safetensors")
    if kind != "safetensors" and is_safetensors:
        raise ValueError(f"{path} ends in .safetensors but is a {kind} checkpoint")
    if kind == "safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                f.keys()
        except Exception as e:  # safetensors raises its own error types
            raise ValueError(f"{path}: not a readable safetensors file ({e})") from e
        return kind
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=kind == "torch")
    except pickle.UnpicklingError as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(
            f"{path}: not a plain state dict, refused by torch.load(weights_only=True): save "
            f"the model's state_dict() (or convert it to .safetensors) ({reason})"
        ) from e
    except (EOFError, RuntimeError, OSError) as e:
        raise ValueError(f"{path}: not a readable PyTorch checkpoint ({e})") from e
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not loaded:
        raise ValueError(f"{path}: holds a {type(loaded).__name__}, not a state dict")
    return kind


# --- the Hugging Face cache ---------------------------------------------------------------


def hf_files(tag_cfg: dict) -> tuple[str, tuple[str, ...]] | None:
    """The Hugging Face repository of a tag and the files open_clip asks it for, in order
    (the safetensors file first); None for a tag open_clip downloads from a URL."""
    from open_clip.constants import HF_WEIGHTS_NAME
    from open_clip.pretrained import _get_safe_alternatives, has_hf_hub

    hub = tag_cfg.get("hf_hub", "")
    if not hub or not has_hf_hub():
        return None
    repo, filename = os.path.split(hub)
    filename = filename or HF_WEIGHTS_NAME
    return repo, (*_get_safe_alternatives(filename), filename)


def cached_hf_file(tag_cfg: dict) -> str | None:
    """The tag's weights file in the Hugging Face cache, if it is there."""
    from huggingface_hub import try_to_load_from_cache

    files = hf_files(tag_cfg)
    if files is None:
        return None
    repo, names = files
    for name in names:
        found = try_to_load_from_cache(repo, name)
        if isinstance(found, str):
            return found
    return None


def hf_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def hf_cache_dir() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def download_hint(tag_cfg: dict) -> str:
    files = hf_files(tag_cfg)
    if files is None:
        return f"download {tag_cfg.get('url', 'the file')} and set [backbone] checkpoint"
    repo, names = files
    return f"`hf download {repo} {names[0]}` (or `huggingface-cli download ...`)"


def require_reachable(model: str, tag: str, tag_cfg: dict) -> None:
    """With HF_HUB_OFFLINE set, the tag's weights must be in the cache: say where they were
    looked for and how to put them there, rather than open_clip's download error."""
    if not hf_offline():
        return
    files = hf_files(tag_cfg)
    if files is None:
        return  # a URL download: open_clip's own cache (~/.cache/clip), checked by open_clip
    if cached_hf_file(tag_cfg) is None:
        repo, names = files
        raise FileNotFoundError(
            f"HF_HUB_OFFLINE is set and the Hugging Face cache ({hf_cache_dir()}) has no "
            f"{model} {tag!r} weights (repository {repo}: {' or '.join(names)}). Fill it once "
            f"on a machine with network: {download_hint(tag_cfg)}, with the same HF_HOME; or "
            f"set [backbone] checkpoint to a local copy beside pretrained = {tag!r}"
        )


# --- OpenAI's TorchScript files -----------------------------------------------------------


def openai_sha256(model: str) -> tuple[str, str]:
    """The sha256 OpenAI publishes for its `model` file (in the URL open_clip's pretrained
    table holds) and that URL; ValueError for a model without OpenAI weights."""
    import open_clip

    url = open_clip.get_pretrained_url(model, "openai")
    if not url:
        known = ", ".join(open_clip.list_openai_models())
        raise ValueError(f"OpenAI published no weights for {model} (it did for: {known})")
    digest = url.rstrip("/").split("/")[-2]
    if not _SHA256.match(digest):
        raise ValueError(f"open_clip's URL for OpenAI's {model} holds no sha256: {url}")
    return digest, url


def convert_openai(path: Path, model: str, out: Path) -> dict[str, Any]:
    """Convert OpenAI's TorchScript CLIP file for `model` into an open_clip state dict in
    safetensors, after checking its sha256 against the one OpenAI publishes. The weights go
    through open_clip's own OpenAI loader (`build_model_from_openai_state_dict`, QuickGELU, no
    JIT), are checked to fit open_clip's `model` config, and are written unchanged (OpenAI's
    fp16 stays fp16). Returns what was done: sha256 of both files, tensors, bytes."""
    import open_clip
    import torch
    from open_clip.model import build_model_from_openai_state_dict
    from safetensors.torch import save_file

    from orchestration.atomic import atomic_path

    expected, url = openai_sha256(model)
    digest = file_sha256(path)
    if digest != expected:
        others = [
            name
            for name in open_clip.list_openai_models()
            if name != model and openai_sha256(name)[0] == digest
        ]
        what = (
            f"it is OpenAI's {others[0]} file: convert it with --model {others[0]}"
            if others
            else "it is not that file (a partial download, or another file)"
        )
        raise ValueError(
            f"{path} has sha256 {digest}, but OpenAI's {model} file ({url}) has {expected}: {what}"
        )
    if checkpoint_format(path) != "torchscript":
        raise ValueError(f"{path} matches OpenAI's sha256 but is not a TorchScript archive")
    scripted = torch.jit.load(str(path), map_location="cpu")
    state = {k: v for k, v in scripted.state_dict().items()}
    built = build_model_from_openai_state_dict(state, quick_gelu=True)
    converted = {k: v.detach().contiguous() for k, v in built.state_dict().items()}
    _check_fits(model, converted)
    with atomic_path(out) as tmp:
        save_file(
            converted,
            str(tmp),
            metadata={
                "format": "pt",
                "open_clip_model": model,
                "open_clip_pretrained": "openai",
                "source_sha256": digest,
            },
        )
    return {
        "model": model,
        "source_sha256": digest,
        "out": str(out),
        "out_sha256": file_sha256(out),
        "tensors": len(converted),
        "bytes": out.stat().st_size,
    }


def _check_fits(model: str, state: dict[str, Any]) -> None:
    """The converted weights must be exactly the parameters of open_clip's `model` (with
    QuickGELU): built on the meta device, so nothing is allocated."""
    import open_clip
    import torch

    logging.disable(logging.WARNING)  # open_clip warns that no weights were loaded: none are
    try:
        with torch.device("meta"):
            reference = open_clip.create_model(model, force_quick_gelu=True, device="meta")
    finally:
        logging.disable(logging.NOTSET)
    wanted = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state.items()}
    if wanted != found:
        missing = sorted(set(wanted) - set(found))[:5]
        extra = sorted(set(found) - set(wanted))[:5]
        shapes = [k for k in set(wanted) & set(found) if wanted[k] != found[k]][:5]
        raise ValueError(
            f"the converted weights do not fit open_clip's {model}: missing {missing}, "
            f"unexpected {extra}, other shapes {shapes}"
        )


# --- what a user is told ------------------------------------------------------------------


def describe_source(model: str, pretrained: str, checkpoint: str, seed: int) -> str:
    """Where the weights of a [backbone] table come from, in a line: a declared local copy
    (its path and sha256), an undeclared file, the Hugging Face cache or a download."""
    if checkpoint:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            return f"{checkpoint}: NOT FOUND"
        digest = file_sha256(path)
        if pretrained:
            return f"{pretrained!r}, from the declared local copy {path} (sha256 {digest})"
        return f"the local file {path} (sha256 {digest}), not declared as any published weights"
    if not pretrained:
        return f"random init from seed {seed} (untrained)"
    if model.startswith(("hf-hub:", "local-dir:")):
        return f"those of {model} (its own config and weights; pretrained is not used)"
    try:
        cfg = tag_config(model, pretrained)
    except ValueError as e:
        return f"{pretrained!r}: {e}"
    files = hf_files(cfg)
    if files is None:
        return f"{pretrained!r}, downloaded from {cfg.get('url')} on first use"
    cached = cached_hf_file(cfg)
    if cached:
        return f"{pretrained!r}, from the Hugging Face cache: {cached}"
    repo, names = files
    if hf_offline():
        return (
            f"{pretrained!r}: NOT in the Hugging Face cache ({hf_cache_dir()}) and HF_HUB_OFFLINE "
            f"is set, so loading fails; fill it with {download_hint(cfg)}"
        )
    return (
        f"{pretrained!r}, not in the Hugging Face cache ({hf_cache_dir()}) yet: downloaded from "
        f"huggingface.co/{repo} ({names[0]}) on first use"
    )
