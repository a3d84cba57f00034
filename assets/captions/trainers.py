"""The trainers' own dataset files, written beside a kohya export's manifest: sd-scripts'
`dataset_config.toml` (both kohya formats) and OneTrainer's `concepts.json` (`kohya`).

sd-scripts (kohya-ss/sd-scripts at 48d368f):
- `--dataset_config` is validated by ConfigSanitizer (library/config_util.py lines 183-245):
  `[general]` takes the subset options (`shuffle_caption`, `keep_tokens`,
  `keep_tokens_separator`, and `caption_extension` only where DreamBooth datasets are
  supported: `fine_tune.py` refuses it); a dataset's subsets are all DreamBooth (`image_dir`
  required) or all fine-tuning (`metadata_file` required), never mixed (lines 317-334).
- A DreamBooth subset lists the images of `image_dir` only, not its sub-folders
  (glob_images, library/train_util.py line 2847, called at line 1999), with the extensions
  of IMAGE_EXTENSIONS (line 104), and finds each caption at the image's path with the
  subset's `caption_extension` (read_caption, line 1946; default `.caption`, config_util.py
  line 85): so one folder per caption group, one subset each.
- A fine-tuning subset reads `metadata_file` and appends `tags` to `caption` (lines
  2302-2339): the export writes `caption` alone.
- With `shuffle_caption`, process_caption (train_util.py line 821) keeps the first
  `keep_tokens` comma-separated tokens in place and shuffles the rest, or, where the caption
  holds `keep_tokens_separator`, keeps what is before it; the separator is removed only on
  that path (shuffle, tag dropout or token warmup on), so the config turns shuffling on.
  `keep_tokens` is one number per subset: each subset is one caption group.

OneTrainer (Nerogar/OneTrainer at 23df383, mgds at 3a6994a): a concept
(modules/util/config/ConceptConfig.py) is a folder (`path`, `include_subdirectories`); with
`text.prompt_source = "sample"` each image's prompt is the `.txt` file of the same name
(DataLoaderText2ImageMixin.py line 78, every line a variant); ShuffleTags (mgds) splits on
`tag_delimiter`, keeps the first `keep_tags_count` and shuffles the rest, without removing
any separator. So concepts.json is written only where the captions are `.txt` files holding
no `keep_tokens_separator`; the manifest says why where it is not.
"""

from __future__ import annotations

import json
from pathlib import Path

from assets.captions.captions import CaptionRules
from orchestration.atomic import write_bytes

DATASET_CONFIG = "dataset_config.toml"
CONCEPTS = "concepts.json"


def _toml(value) -> str:
    """A TOML value: JSON's strings (with \\uXXXX escapes) and integers are TOML's too."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value), ensure_ascii=True)


def dataset_config(out: Path, manifest: dict, caption_extension: str, rules: CaptionRules) -> str:
    """sd-scripts' `--dataset_config` for the export in `out`: one subset per caption folder
    (`kohya`) or per shard (`kohya_json`), each with its caption group's keep_tokens."""
    fmt = manifest["format"]
    general = {"shuffle_caption": True}
    if fmt == "kohya":
        general["caption_extension"] = caption_extension
    if rules.keep_tokens_separator:
        general["keep_tokens_separator"] = rules.keep_tokens_separator
    lines = [
        f"# sd-scripts --dataset_config for the {fmt} export in this folder, written by",
        "# scoretag export with its manifest.json (the next export replaces it). Resolution,",
        "# batch size and bucketing are yours to add under [general] or [[datasets]].",
        "[general]",
        *(f"{key} = {_toml(value)}" for key, value in general.items()),
        "",
        "[[datasets]]",
    ]
    for group in manifest["kohya"]:
        if fmt == "kohya":
            subsets = [("image_dir", str(out / group["folder"]))]
        else:
            subsets = [("metadata_file", str(out / name)) for name in group["shards"]]
        for key, path in subsets:
            lines += [
                "",
                "  [[datasets.subsets]]",
                f"  {key} = {_toml(path)}",
                "  num_repeats = 1",
                f"  keep_tokens = {group['keep_tokens']}",
            ]
    return "\n".join(lines) + "\n"


def concepts(out: Path, manifest: dict) -> list[dict]:
    """OneTrainer's concepts: one per caption folder, its keep_tags_count the group's
    keep_tokens, tag shuffling on."""
    return [
        {
            "__version": 2,
            "name": group["folder"],
            "path": str(out / group["folder"]),
            "seed": index,
            "enabled": True,
            "type": "STANDARD",
            "include_subdirectories": False,
            "image_variations": 1,
            "text_variations": 1,
            "balancing": 1.0,
            "balancing_strategy": "REPEATS",
            "loss_weight": 1.0,
            "text": {
                "prompt_source": "sample",
                "prompt_path": "",
                "enable_tag_shuffling": True,
                "tag_delimiter": ",",
                "keep_tags_count": group["keep_tokens"],
            },
        }
        for index, group in enumerate(manifest["kohya"])
    ]


def no_concepts_reason(caption_extension: str, rules: CaptionRules) -> str | None:
    """Why OneTrainer cannot read this kohya export's captions as they are, or None."""
    if caption_extension != ".txt":
        return f"OneTrainer reads .txt captions, not {caption_extension}"
    if rules.keep_tokens_separator:
        return "OneTrainer does not remove keep_tokens_separator from captions"
    return None


def write_trainer_configs(
    out: Path, manifest: dict, caption_extension: str, rules: CaptionRules
) -> None:
    """Write dataset_config.toml and, for `kohya` where OneTrainer can read it, concepts.json
    (whole or not at all); a concepts.json that no longer fits is removed."""
    write_bytes(
        out / DATASET_CONFIG, dataset_config(out, manifest, caption_extension, rules).encode()
    )
    if manifest["format"] != "kohya":
        return
    if no_concepts_reason(caption_extension, rules) is None:
        text = json.dumps(concepts(out, manifest), indent=2) + "\n"
        write_bytes(out / CONCEPTS, text.encode())
    else:
        (out / CONCEPTS).unlink(missing_ok=True)
