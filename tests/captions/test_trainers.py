"""The kohya exports read back the way sd-scripts and OneTrainer read them.

sd-scripts' own code is used where it can be imported (a checkout named by
SCORETAG_SD_SCRIPTS, or `library` on the path, with its requirements): its ConfigSanitizer
validates dataset_config.toml and its datasets load the export. Without it, the tests apply
the rules of its code as documented in assets/captions/trainers.py (kohya-ss/sd-scripts at
48d368f): the folder listing of glob_images (library/train_util.py line 2847: one folder, no
sub-folders, IMAGE_EXTENSIONS of line 104), read_caption (line 1946: the image's path with
the caption extension, first line), the fine-tuning caption (lines 2302-2339: `caption`,
then `caption_separator` and `tags` where there are tags) and process_caption's shuffle
(line 821). Nothing of sd-scripts is copied into the project.
"""

from __future__ import annotations

import importlib
import json
import os
import random
import sys
import tomllib
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from assets.captions.captions import CaptionRules, fixed_prefix
from assets.captions.shards import PENDING, Target, write_shards
from tests.captions.test_formats import located_rows

# library/train_util.py line 104 (without the optional avif and jxl plugins)
SD_IMAGE_EXTENSIONS = [".png", ".jpg", ".jpeg", ".webp", ".bmp", ".PNG", ".JPG", ".JPEG"]
SD_IMAGE_EXTENSIONS += [".WEBP", ".BMP"]
SOURCES = {"e621": "source_furry"}


def _sd_scripts():
    """sd-scripts' config_util and train_util, or None where they cannot be imported."""
    checkout = os.environ.get("SCORETAG_SD_SCRIPTS")
    if checkout and checkout not in sys.path:
        sys.path.insert(0, checkout)
    try:
        return (
            importlib.import_module("library.config_util"),
            importlib.import_module("library.train_util"),
        )
    except Exception:  # not installed, or its requirements missing
        return None


SD_SCRIPTS = _sd_scripts()


def _concept_config():
    """OneTrainer's ConceptConfig (a checkout named by SCORETAG_ONETRAINER), or None."""
    checkout = os.environ.get("SCORETAG_ONETRAINER")
    if checkout and checkout not in sys.path:
        sys.path.insert(0, checkout)
    try:
        return importlib.import_module("modules.util.config.ConceptConfig").ConceptConfig
    except Exception:  # not installed here
        return None


def _rules(style: str = "v6", separator: str = "") -> CaptionRules:
    return CaptionRules(
        style=style, min_bucket=4, source_tags=SOURCES, keep_tokens_separator=separator
    )


def _with_family_tags(rows: pl.DataFrame, rules: CaptionRules) -> pl.DataFrame:
    """Each family cut by value gives the rows its tags in turn (an empty tag: none), so
    the fixed tags' count varies from row to row as a real export's do."""
    for family in rules.words.cut_families():
        turn = {i: tag or None for i, tag in enumerate(family.tags)}
        picked = (pl.col("post_id") % len(family.tags)).replace_strict(turn, return_dtype=pl.String)
        rows = rows.with_columns(picked.alias(f"tag_{family.name}"))
    return rows


def _export(tmp_path: Path, fmt: str, rules: CaptionRules, rows=None, **target):
    root = tmp_path / "images"
    rows = _with_family_tags(located_rows(root, 12) if rows is None else rows, rules)
    out = tmp_path / "out"
    target = Target(fmt, out, 2, image_root=root, **target)
    return rows, out, write_shards(rows, rules, target, {}).manifest


def _glob_images(folder: Path) -> list[Path]:
    """glob_images(folder, "*"): the folder's own files with an accepted extension."""
    return sorted(
        p
        for p in folder.iterdir()
        if not p.name.startswith(".") and any(p.name.endswith(e) for e in SD_IMAGE_EXTENSIONS)
    )


def _tokens(caption: str, separator: str) -> list[str]:
    """The caption's tokens as process_caption splits them (caption_separator ",")."""
    parts = caption.split(separator, 1) if separator and separator in caption else [caption]
    return [t.strip() for part in parts for t in part.split(",") if t.strip()]


def _shuffled(caption: str, keep_tokens: int, separator: str, rng: random.Random) -> list[str]:
    """process_caption with shuffle_caption on: the fixed tokens (before the separator where
    the caption holds it, else the first keep_tokens) stay, the rest is shuffled."""
    if separator and separator in caption:
        fixed_part, flex_part = caption.split(separator, 1)
        fixed = [t.strip() for t in fixed_part.split(",") if t.strip()]
        flex = [t.strip() for t in flex_part.split(",") if t.strip()]
    else:
        tokens = [t.strip() for t in caption.strip().split(",")]
        fixed, flex = tokens[:keep_tokens], tokens[keep_tokens:]
    rng.shuffle(flex)
    return fixed + flex


def _expected(rows: pl.DataFrame, rules: CaptionRules) -> dict[str, tuple[list[str], int]]:
    """Each image's fixed tags and keep_tokens, by its real path."""
    fixed = fixed_prefix(rows, rules)
    return {
        str(Path(path).resolve()): (prefix.split(", "), keep)
        for path, prefix, keep in zip(
            rows["image_path"], fixed["prefix"], fixed["keep_tokens"], strict=True
        )
    }


def _check_caption(caption: str, prefix: list[str], keep: int, separator: str) -> None:
    tokens = _tokens(caption, separator)
    assert len(tokens) == len(set(tokens)), f"a tag twice: {caption}"
    assert keep == len(prefix) and tokens[:keep] == prefix
    assert separator in caption if separator else "|||" not in caption
    assert "\\(" not in caption  # plain parentheses: sd-scripts tokenizes the text as written
    rng = random.Random(0)
    for _ in range(20):
        shuffled = _shuffled(caption, keep, separator, rng)
        assert shuffled[:keep] == prefix and sorted(shuffled) == sorted(tokens)


@pytest.mark.parametrize("separator", ["", "|||"])
@pytest.mark.parametrize("style", ["v6", "v7", "noobai"])
def test_kohya_dataset_config_loads_every_image_once_with_its_tags_once(
    tmp_path: Path, style: str, separator: str
):
    rules = _rules(style, separator)
    rows, out, manifest = _export(tmp_path, "kohya", rules, caption_extension=".caption")
    config = tomllib.loads((out / "dataset_config.toml").read_text())
    general = config["general"]
    assert general["shuffle_caption"] is True and general["caption_extension"] == ".caption"
    assert general.get("keep_tokens_separator", "") == separator
    expected = _expected(rows, rules)
    seen: Counter = Counter()
    subsets = [s for dataset in config["datasets"] for s in dataset["subsets"]]
    assert len(subsets) == len(manifest["kohya"]) > 1
    for subset in subsets:
        assert set(subset) == {"image_dir", "num_repeats", "keep_tokens"}
        for image in _glob_images(Path(subset["image_dir"])):
            real = str(image.resolve())
            seen[real] += 1
            caption_file = image.with_suffix(general["caption_extension"])
            caption = caption_file.read_text(encoding="utf-8").splitlines()[0].strip()
            prefix, keep = expected[real]
            assert subset["keep_tokens"] == keep
            _check_caption(caption, prefix, keep, separator)
    assert seen == Counter(list(expected))  # every exported image, each once


def test_kohya_json_dataset_config_holds_no_tag_twice(tmp_path: Path):
    rules = _rules("v6")
    rows, out, manifest = _export(tmp_path, "kohya_json", rules)
    config = tomllib.loads((out / "dataset_config.toml").read_text())
    assert config["general"] == {"shuffle_caption": True}  # fine_tune.py refuses DB options
    expected = _expected(rows, rules)
    seen: Counter = Counter()
    for subset in config["datasets"][0]["subsets"]:
        assert set(subset) == {"metadata_file", "num_repeats", "keep_tokens"}
        metadata = json.loads(Path(subset["metadata_file"]).read_text())
        for image, entry in metadata.items():
            seen[str(Path(image).resolve())] += 1
            # FineTuningDataset: caption, then caption_separator and tags where there are tags
            tags = entry.get("tags")
            caption = entry["caption"] + ("," + tags if tags else "")
            prefix, keep = expected[str(Path(image).resolve())]
            assert subset["keep_tokens"] == keep
            _check_caption(caption, prefix, keep, "")
    assert seen == Counter(list(expected))


@pytest.mark.skipif(SD_SCRIPTS is None, reason="sd-scripts cannot be imported here")
@pytest.mark.parametrize("fmt", ["kohya", "kohya_json"])
@pytest.mark.parametrize("separator", ["", "|||"])
def test_sd_scripts_itself_loads_the_export(tmp_path: Path, fmt: str, separator: str):
    from PIL import Image

    config_util, train_util = SD_SCRIPTS
    rules = _rules("v6", separator)
    rows = located_rows(tmp_path / "images", 12)
    for i, path in enumerate(rows["image_path"]):  # pictures sd-scripts can size
        Image.new("RGB", (64, 64 + 8 * i)).save(path, "PNG" if path.endswith("png") else "JPEG")
    rows, out, _ = _export(tmp_path, fmt, rules, rows)
    # as sdxl_train_network.py does before it makes its datasets
    latents = importlib.import_module("library.strategy_base").LatentsCachingStrategy
    if latents.get_strategy() is None:
        sdxl = importlib.import_module("library.strategy_sd").SdSdxlLatentsCachingStrategy
        latents.set_strategy(sdxl(False, False, 1, True))
    user_config = config_util.load_user_config(str(out / "dataset_config.toml"))
    # train_network.py's sanitizer, and the one of the script for this kind of dataset
    config_util.ConfigSanitizer(True, True, False, True).sanitize_user_config(user_config)
    only = config_util.ConfigSanitizer(fmt == "kohya", fmt == "kohya_json", False, True)
    only.sanitize_user_config(user_config)  # train_db.py's, or fine_tune.py's
    parser = __import__("argparse").ArgumentParser()
    train_util.add_dataset_arguments(parser, True, True, True)
    train_util.add_training_arguments(parser, True)
    args = parser.parse_args(["--resolution", "64"])
    train_util.prepare_dataset_args(args, True)
    sanitizer = config_util.ConfigSanitizer(True, True, False, True)
    blueprint = config_util.BlueprintGenerator(sanitizer).generate(user_config, args)
    group, _ = config_util.generate_dataset_group_by_blueprint(blueprint.dataset_group)
    expected = _expected(rows, rules)
    seen: Counter = Counter()
    for dataset in group.datasets:
        for subset in dataset.subsets:
            assert subset.shuffle_caption
        for info in dataset.image_data.values():
            real = str(Path(info.absolute_path).resolve())
            seen[real] += 1
            prefix, keep = expected[real]
            subset = dataset.image_to_subset[info.image_key]
            assert subset.keep_tokens == keep
            tokens = _tokens(info.caption, separator)
            assert len(tokens) == len(set(tokens)) and tokens[:keep] == prefix
            for _ in range(10):
                shuffled = [
                    t.strip() for t in dataset.process_caption(subset, info.caption).split(",")
                ]
                assert shuffled[:keep] == prefix and sorted(shuffled) == sorted(tokens)
    assert seen == Counter(list(expected))


@pytest.mark.parametrize("link", ["symlink", "hardlink", "copy"])
def test_images_are_linked_or_copied_as_asked(tmp_path: Path, link: str):
    rows, out, manifest = _export(tmp_path, "kohya", _rules(), link=link)
    assert manifest["link"] == link
    images = [p for g in manifest["kohya"] for p in _glob_images(out / g["folder"])]
    assert len(images) == rows.height
    originals = {Path(p).read_bytes(): Path(p) for p in rows["image_path"]}
    for image in images:
        original = originals[image.read_bytes()]
        assert image.is_symlink() == (link == "symlink")
        assert os.path.samefile(image, original) == (link != "copy")
    before = {p: p.lstat().st_ino for p in images}
    _export(tmp_path, "kohya", _rules(), rows, link=link)  # again: nothing replaced
    assert {p: p.lstat().st_ino for p in images} == before


def test_changing_the_link_replaces_the_images_it_placed(tmp_path: Path):
    rows, out, manifest = _export(tmp_path, "kohya", _rules(), link="symlink")
    _, out, manifest = _export(tmp_path, "kohya", _rules(), rows, link="copy")
    images = [p for g in manifest["kohya"] for p in _glob_images(out / g["folder"])]
    assert images and not any(p.is_symlink() for p in images)


@pytest.mark.parametrize("what", ["caption", "image"])
def test_a_file_the_export_did_not_write_is_never_replaced(tmp_path: Path, what: str):
    root = tmp_path / "images"
    rows = located_rows(root, 12)
    out = tmp_path / "out"
    row = rows.row(0, named=True)  # e621_100, bucket 4, with a source tag
    name = f"{row['site']}_{row['post_id']}" + (".txt" if what == "caption" else ".jpg")
    mine = out / "1_score_4_source" / name
    mine.parent.mkdir(parents=True)
    mine.write_text("my own caption\n")
    target = Target("kohya", out, 2, image_root=root)
    with pytest.raises(ValueError, match="were not written by it: .*e621_100"):
        write_shards(rows, _rules(), target, {})
    assert mine.read_text() == "my own caption\n"
    assert sorted(p.name for p in out.rglob("*")) == sorted([mine.name, mine.parent.name])


def test_a_killed_kohya_export_may_replace_what_it_wrote(tmp_path: Path):
    root = tmp_path / "images"
    rows = located_rows(root, 12)
    out = tmp_path / "out"
    target = Target("kohya", out, 2, image_root=root)
    write_shards(rows, _rules(), target, {})
    (out / "manifest.json").unlink()  # as if killed before its manifest
    (out / PENDING).write_text(json.dumps([str(p) for p in out.rglob("*") if p.is_file()]))
    manifest = write_shards(rows, _rules(), target, {}).manifest
    assert manifest["rows"] == 12 and not (out / PENDING).exists()


def test_a_caption_moving_bucket_leaves_no_stale_file(tmp_path: Path):
    root = tmp_path / "images"
    rows = located_rows(root, 12)
    out = tmp_path / "out"
    target = Target("kohya", out, 2, image_root=root)
    write_shards(rows, _rules(), target, {})
    moved = rows.with_columns(bucket=pl.when(pl.col("post_id") == 101).then(9).otherwise("bucket"))
    write_shards(moved, _rules(), target, {})
    found = sorted(p.name for p in out.rglob("danbooru_101.*"))
    assert found == ["danbooru_101.png", "danbooru_101.txt"]
    assert (out / "1_score_9" / "danbooru_101.txt").is_file()


@pytest.mark.parametrize("style", ["v6", "noobai"])
def test_onetrainer_concepts_one_per_folder_keeping_the_fixed_tags(tmp_path: Path, style: str):
    rules = _rules(style)
    rows, out, manifest = _export(tmp_path, "kohya", rules)
    assert manifest["onetrainer"] == "concepts.json"
    concepts = json.loads((out / "concepts.json").read_text())
    expected = _expected(rows, rules)
    seen: Counter = Counter()
    assert [c["name"] for c in concepts] == [g["folder"] for g in manifest["kohya"]]
    concept_config = _concept_config()
    for concept in concepts:
        if concept_config is not None:  # read as OneTrainer reads its concept file
            read = concept_config.default_values().from_dict(concept)
            assert read.to_dict()["text"]["keep_tags_count"] == concept["text"]["keep_tags_count"]
            assert (read.path, read.include_subdirectories) == (concept["path"], False)
        assert concept["include_subdirectories"] is False and concept["enabled"] is True
        assert concept["type"] == "STANDARD" and concept["__version"] == 2
        text = concept["text"]
        assert text["prompt_source"] == "sample" and text["enable_tag_shuffling"] is True
        assert text["tag_delimiter"] == ","
        # CollectPaths: the folder's files by extension; "sample": the image's .txt file
        for image in _glob_images(Path(concept["path"])):
            real = str(image.resolve())
            seen[real] += 1
            prefix, keep = expected[real]
            assert text["keep_tags_count"] == keep
            lines = [line.strip() for line in image.with_suffix(".txt").read_text().splitlines()]
            assert len([line for line in lines if line]) == 1
            # mgds ShuffleTags: split on the delimiter, keep keep_tags_count, shuffle the rest
            tags = [t.strip() for t in lines[0].split(",") if t.strip()]
            assert tags[:keep] == prefix and len(tags) == len(set(tags))
    assert seen == Counter(list(expected))


@pytest.mark.parametrize(("extension", "separator"), [(".caption", ""), (".txt", "|||")])
def test_no_concepts_where_onetrainer_would_misread(tmp_path: Path, extension, separator):
    rules = _rules("v6", separator)
    _, out, manifest = _export(tmp_path, "kohya", rules, caption_extension=extension)
    assert manifest["onetrainer"].startswith("not written: OneTrainer")
    assert not (out / "concepts.json").exists()


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "webdataset"])
def test_the_separator_stays_out_of_the_other_formats(tmp_path: Path, fmt: str):
    from assets.captions.verify import read_export

    _, out, manifest = _export(tmp_path, fmt, _rules("v6", "|||"))
    captions = read_export(out, manifest)["caption"]
    assert captions.len() == 12 and not captions.str.contains("|||", literal=True).any()
    assert not (out / "dataset_config.toml").exists()


def test_scoretag_export_links_as_asked_and_says_so_in_its_command(home, tmp_path: Path):
    from click.testing import CliRunner

    from scoretag.cli import cli

    def run(*args: str):
        base = ["--profile", "demo", "--home", str(home.home), "export"]
        return CliRunner().invoke(cli, [*base, *args])

    out = tmp_path / "kohya"
    done = run("--format", "kohya", "--link", "copy", "--out", str(out))
    assert done.exit_code == 0, done.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["link"] == "copy" and "--link copy --out" in manifest["command"]
    assert (out / "dataset_config.toml").is_file() and (out / "concepts.json").is_file()
    images = [p for g in manifest["kohya"] for p in _glob_images(out / g["folder"])]
    assert len(images) == manifest["rows"] > 0 and not any(p.is_symlink() for p in images)
    refused = run("--format", "parquet", "--link", "copy", "--out", str(tmp_path / "p"))
    assert refused.exit_code != 0 and "only the kohya format places images" in refused.output


def test_images_sd_scripts_would_not_list_are_left_out_and_counted(tmp_path: Path):
    from assets.captions.selection import IMAGE_TYPE_UNREAD, with_images

    names = {1: "a.png", 2: "b.gif", 3: "c.JPG", 4: "d.tiff"}
    posts = pl.DataFrame(
        {
            "site": ["danbooru"] * 4,
            "post_id": list(names),
            "md5": [f"{i:032x}" for i in names],
            "image_key": [f"{i:032x}" for i in names],
        }
    )
    index = pl.DataFrame(
        {
            "md5": [f"{i:032x}" for i in names],
            "sha512": [None] * 4,
            "post_key": [None] * 4,
            "image_key": [f"{i:032x}" for i in names],
            "path": [str(tmp_path / name) for name in names.values()],
            "offset": [-1] * 4,
            "length": [10] * 4,
            "file_ext": [name.rsplit(".", 1)[1].lower() for name in names.values()],
        },
        schema_overrides={"sha512": pl.String, "post_key": pl.String},
    )
    kohya = with_images(posts, "kohya", tmp_path, index)
    assert kohya.rows["post_id"].to_list() == [1, 3] and kohya.dropped == {IMAGE_TYPE_UNREAD: 2}
    assert with_images(posts, "kohya_json", tmp_path, index).rows.height == 4


def test_a_hard_link_across_file_systems_is_a_clear_error(tmp_path: Path, monkeypatch):
    import errno

    def cross_device(source, target):
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

    monkeypatch.setattr(os, "link", cross_device)
    with pytest.raises(OSError, match="could not hardlink .*; --link copy or symlink works"):
        _export(tmp_path, "kohya", _rules(), link="hardlink")
