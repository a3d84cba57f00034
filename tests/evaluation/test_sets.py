"""Finding an evaluation set's images and prompts, on small pictures written here."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import polars as pl
import pytest
from PIL import Image

from assets.evaluation import sets
from assets.evaluation.sets import (
    IMAGES,
    PROBLEMS,
    check_name,
    find_set,
    name_for,
    newest_change,
    signature,
)


def picture(colour: str, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(out, fmt)
    return out.getvalue()


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def jsonl(path: Path, *lines: object) -> Path:
    text = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)
    return write(path, text)


def by_source(images: pl.DataFrame) -> dict[str, dict]:
    return {row["source"]: row for row in images.iter_rows(named=True)}


def test_a_folder_per_prompt_with_sidecar_txt(tmp_path):
    write(tmp_path / "a cat/0001.png", picture("red"))
    write(tmp_path / "a cat/0001.txt", "  a cat on a mat\n")
    write(tmp_path / "a cat/0002.jpg", picture("green", "JPEG"))
    write(tmp_path / "dogs/deep/0001.png", picture("blue"))
    write(tmp_path / "top.png", picture("white"))
    write(tmp_path / "notes.md", "not an image")
    images, problems = find_set(tmp_path)
    assert images.schema == pl.Schema(IMAGES)
    assert problems.schema == pl.Schema(PROBLEMS)
    assert problems.height == 0
    assert images["source"].to_list() == [
        "a cat/0001.png",
        "a cat/0002.jpg",
        "dogs/deep/0001.png",
        "top.png",
    ]
    rows = by_source(images)
    assert rows["a cat/0001.png"]["prompt"] == "a cat on a mat"
    assert rows["a cat/0001.png"]["prompt_source"] == "txt"
    assert rows["a cat/0001.png"]["group"] == "a cat on a mat"
    assert rows["a cat/0001.png"]["pair_key"] == "a cat/0001"  # no seed: matched by path
    # Without a prompt an image is grouped by its folder.
    assert rows["a cat/0002.jpg"]["prompt"] is None
    assert rows["a cat/0002.jpg"]["prompt_source"] is None
    assert rows["a cat/0002.jpg"]["group"] == "a cat"
    assert rows["dogs/deep/0001.png"]["group"] == "dogs/deep"
    assert rows["top.png"]["group"] == "."
    assert rows["top.png"]["pair_key"] == "top"
    assert rows["a cat/0002.jpg"]["file_ext"] == "jpg"
    assert rows["top.png"]["path"] == str((tmp_path / "top.png").resolve())
    assert (rows["top.png"]["offset"], rows["top.png"]["length"]) == (-1, -1)


def test_sha256_is_of_the_file_bytes(tmp_path):
    red = write(tmp_path / "x/red.png", picture("red"))
    blue = write(tmp_path / "blue.webp", picture("blue", "WEBP"))
    images, _ = find_set(tmp_path, hash_threads=2)
    rows = by_source(images)
    assert rows["x/red.png"]["sha256"] == hashlib.sha256(red.read_bytes()).hexdigest()
    assert rows["blue.webp"]["sha256"] == hashlib.sha256(blue.read_bytes()).hexdigest()


def test_prompts_jsonl_names_images_by_any_key_with_seeds(tmp_path):
    for name in ("a.png", "b.png", "sub/c.png", "sub/d.png"):
        write(tmp_path / name, picture("red"))
    jsonl(
        tmp_path / "prompts.jsonl",
        {"file": "a.png", "prompt": "a cat", "seed": 7},
        {"file_name": "b.png", "text": "a dog", "seed": 0},
        {"image": "sub/c.png", "caption": "a cow"},  # no seed: paired by path
    )
    # A nested metadata.jsonl names its images relative to its own folder.
    jsonl(tmp_path / "sub/metadata.jsonl", {"file_name": "d.png", "text": "a hen", "seed": -3})
    images, problems = find_set(tmp_path)
    assert problems.height == 0
    rows = by_source(images)
    assert [(rows[s]["prompt"], rows[s]["seed"]) for s in sorted(rows)] == [
        ("a cat", 7),
        ("a dog", 0),
        ("a cow", None),
        ("a hen", -3),
    ]
    assert rows["a.png"]["pair_key"] == "seed=7 prompt=a cat"
    assert rows["b.png"]["pair_key"] == "seed=0 prompt=a dog"
    assert rows["sub/c.png"]["pair_key"] == "sub/c"
    assert rows["sub/d.png"]["pair_key"] == "seed=-3 prompt=a hen"
    assert set(images["prompt_source"]) == {"jsonl"}
    assert rows["sub/c.png"]["group"] == "a cow"


def test_jsonl_beats_sidecar_txt_and_empty_prompt_is_none(tmp_path):
    write(tmp_path / "a.png", picture("red"))
    write(tmp_path / "a.txt", "from the txt")
    write(tmp_path / "b.png", picture("blue"))
    write(tmp_path / "b.txt", "b from the txt")
    write(tmp_path / "c.png", picture("green"))
    write(tmp_path / "c.txt", "   \n")
    jsonl(
        tmp_path / "prompts.jsonl",
        {"file": "a.png", "prompt": "from the jsonl"},
        {"file": "b.png", "prompt": "  ", "seed": 5},  # no prompt text: the txt's counts
    )
    images, problems = find_set(tmp_path)
    assert problems.height == 0
    rows = by_source(images)
    assert (rows["a.png"]["prompt"], rows["a.png"]["prompt_source"]) == ("from the jsonl", "jsonl")
    assert (rows["b.png"]["prompt"], rows["b.png"]["prompt_source"]) == ("b from the txt", "txt")
    assert rows["b.png"]["pair_key"] == "seed=5 prompt=b from the txt"
    assert (rows["c.png"]["prompt"], rows["c.png"]["prompt_source"]) == (None, None)
    assert rows["c.png"]["group"] == "."


def test_bad_jsonl_lines_are_problems_and_the_others_count(tmp_path):
    for name in ("a.png", "b.png", "c.png"):
        write(tmp_path / name, picture("red"))
    jsonl(
        tmp_path / "prompts.jsonl",
        {"file": "a.png", "prompt": "a cat"},
        "{not json",
        '["a list"]',
        {"prompt": "no file"},
        {"file": "b.png", "seed": 1},
        {"file": "b.png", "prompt": "a dog", "seed": "12"},
        {"file": "b.png", "prompt": "a dog", "seed": 1.5},
        {"file": "b.png", "prompt": "a dog", "seed": True},
        {"file": "missing.png", "prompt": "nothing"},
        "",
        {"file": "c.png", "prompt": "a cow", "seed": 2},
    )
    images, problems = find_set(tmp_path)
    rows = by_source(images)
    assert (rows["a.png"]["prompt"], rows["c.png"]["prompt"], rows["c.png"]["seed"]) == (
        "a cat",
        "a cow",
        2,
    )
    assert rows["b.png"]["prompt"] is None
    assert problems["source"].to_list() == [f"prompts.jsonl:{n}" for n in range(2, 10)]
    assert set(problems["reason"]) == {"bad_prompt"}
    assert set(problems["path"]) == {str((tmp_path / "prompts.jsonl").resolve())}
    details = problems["detail"].to_list()
    assert details[0].startswith("not valid JSON")
    assert details[1] == "not a JSON object"
    assert "file_name" in details[2]
    assert "caption" in details[3]
    assert all(d.startswith("seed is not an integer") for d in details[4:7])
    assert "missing.png" in details[7]


def test_an_image_named_twice_keeps_the_first_prompt(tmp_path):
    write(tmp_path / "a.png", picture("red"))
    write(tmp_path / "b.png", picture("blue"))
    jsonl(
        tmp_path / "prompts.jsonl",
        {"file": "a.png", "prompt": "first"},
        {"file": "b.png", "prompt": "same"},
        {"file": "./a.png", "prompt": "second"},
        {"file": "b.png", "prompt": "same"},  # the same prompt again is no disagreement
    )
    images, problems = find_set(tmp_path)
    assert by_source(images)["a.png"]["prompt"] == "first"
    assert by_source(images)["b.png"]["prompt"] == "same"
    assert problems.select("source", "reason").rows() == [("prompts.jsonl:3", "bad_prompt")]
    assert "prompts.jsonl:1" in problems["detail"][0]


def test_tar_members_are_images_hashed_from_their_bytes(tmp_path):
    red, blue = picture("red"), picture("blue", "JPEG")
    shard = tmp_path / "shards/000.tar"
    shard.parent.mkdir()
    with tarfile.open(shard, "w") as tar:
        for name, data in (("x/red.png", red), ("blue.jpg", blue), ("blue.txt", b"a blue")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    jsonl(tmp_path / "prompts.jsonl", {"file": "shards/000.tar/x/red.png", "prompt": "red"})
    images, problems = find_set(tmp_path)
    assert problems.height == 0
    rows = by_source(images)
    assert sorted(rows) == ["shards/000.tar/blue.jpg", "shards/000.tar/x/red.png"]
    member = rows["shards/000.tar/x/red.png"]
    assert member["sha256"] == hashlib.sha256(red).hexdigest()
    assert rows["shards/000.tar/blue.jpg"]["sha256"] == hashlib.sha256(blue).hexdigest()
    assert member["path"] == str(shard.resolve())
    assert member["offset"] >= 0 and member["length"] == len(red)
    assert member["prompt"] == "red"
    assert rows["shards/000.tar/blue.jpg"]["prompt"] is None  # sidecars are for loose files
    assert rows["shards/000.tar/blue.jpg"]["group"] == "shards/000.tar"


def test_empty_and_unreadable_files_are_problems(tmp_path, monkeypatch):
    write(tmp_path / "good.png", picture("red"))
    write(tmp_path / "empty.png", b"")
    locked = write(tmp_path / "locked.png", picture("blue"))
    real = sets.read_bytes

    def refusing(path: Path, offset: int = -1, size: int = -1) -> bytes:
        if path.name == "locked.png":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, offset, size)

    monkeypatch.setattr(sets, "read_bytes", refusing)
    images, problems = find_set(tmp_path)
    assert images["source"].to_list() == ["good.png"]
    assert problems.select("source", "reason").rows() == [
        ("empty.png", "empty"),
        ("locked.png", "corrupt"),
    ]
    assert "Permission denied" in problems["detail"][1]
    assert problems["path"][1] == str(locked.resolve())


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 file anyway")
def test_a_file_without_read_permission_is_a_problem(tmp_path):
    write(tmp_path / "good.png", picture("red"))
    locked = write(tmp_path / "locked.png", picture("blue"))
    locked.chmod(0)
    try:
        images, problems = find_set(tmp_path)
    finally:
        locked.chmod(0o644)
    assert images["source"].to_list() == ["good.png"]
    assert problems.select("source", "reason").rows() == [("locked.png", "corrupt")]


def test_a_vanished_file_is_missing(tmp_path, monkeypatch):
    write(tmp_path / "gone.png", picture("red"))
    found = sets._found

    def then_deleted(root: Path) -> pl.DataFrame:
        listed = found(root)
        (tmp_path / "gone.png").unlink()
        return listed

    monkeypatch.setattr(sets, "_found", then_deleted)
    images, problems = find_set(tmp_path)
    assert images.height == 0
    assert problems.select("source", "reason").rows() == [("gone.png", "missing")]


def test_an_empty_set_and_a_wrong_root(tmp_path):
    write(tmp_path / "set/readme.txt", "no pictures yet")
    images, problems = find_set(tmp_path / "set")
    assert (images.height, problems.height) == (0, 0)
    assert images.schema == pl.Schema(IMAGES) and problems.schema == pl.Schema(PROBLEMS)
    with pytest.raises(ValueError, match="does not exist"):
        find_set(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="not a folder"):
        find_set(tmp_path / "set/readme.txt")


@pytest.mark.parametrize("name", ["a", "step-1000", "ema_0.999", "_x", "A" * 64, "v1.2-b_3"])
def test_valid_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", ".hidden", "-flag", "a b", "a/b", "é", "A" * 65, "a\n"])
def test_invalid_names(name):
    with pytest.raises(ValueError, match="not a valid set name"):
        check_name(name)


def test_name_for_a_folder(tmp_path):
    assert name_for(tmp_path / "step 1000 (ema)") == "step-1000-ema"
    assert name_for(Path("/x/.checkpoint-7")) == "checkpoint-7"
    assert name_for(Path("/x/run_3/")) == "run_3"
    assert name_for(Path("/x/" + "b" * 70)) == "b" * 64
    with pytest.raises(ValueError, match="no set name"):
        name_for(Path("/x/((()))"))
    with pytest.raises(ValueError, match="no set name"):
        name_for(Path("/x/画像"))


def test_signature_changes_with_the_files_and_only_then(tmp_path):
    write(tmp_path / "a/1.png", picture("red"))
    first = signature(tmp_path)
    find_set(tmp_path)  # reading changes nothing
    assert signature(tmp_path) == first
    added = write(tmp_path / "a/2.png", picture("blue"))
    after_add = signature(tmp_path)
    assert after_add != first
    os.utime(added, ns=(10**18, 10**18))
    after_touch = signature(tmp_path)
    assert after_touch != after_add
    write(added, picture("green") + b"more")
    after_resize = signature(tmp_path)
    assert after_resize != after_touch
    added.unlink()
    after_remove = signature(tmp_path)
    assert after_remove != after_resize
    assert after_remove == first
    with pytest.raises(ValueError, match="does not exist"):
        signature(tmp_path / "nowhere")


def test_newest_change_sees_files_and_folders(tmp_path):
    folder = tmp_path / "sub"
    image = write(folder / "1.png", picture("red"))
    for path in (tmp_path, folder, image):
        os.utime(path, (1000, 1000))
    assert newest_change(tmp_path) == 1000
    os.utime(image, (2000, 2000))
    assert newest_change(tmp_path) == 2000
    os.utime(folder, (3000, 3000))  # what a removal leaves behind
    assert newest_change(tmp_path) == 3000


def test_a_shard_cut_short_is_refused_or_its_member_truncated(tmp_path, monkeypatch):
    data = picture("red") + bytes(4000)  # long enough that the cut falls inside it
    shard = tmp_path / "000.tar"
    with tarfile.open(shard, "w") as tar:
        info = tarfile.TarInfo("red.png")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    whole = shard.read_bytes()
    shard.write_bytes(whole[: 512 + 1000])  # the header and 1000 bytes
    # Cut before listing: the tar reader refuses the shard, naming it.
    with pytest.raises(tarfile.ReadError, match="000.tar is truncated"):
        find_set(tmp_path)
    # Cut after listing (a copy still being written): its member is truncated, not hashed.
    shard.write_bytes(whole)
    found = sets._found

    def then_cut(root: Path) -> pl.DataFrame:
        listed = found(root)
        shard.write_bytes(whole[: 512 + 1000])
        return listed

    monkeypatch.setattr(sets, "_found", then_cut)
    images, problems = find_set(tmp_path)
    assert images.height == 0
    assert problems.select("source", "reason", "detail").rows() == [
        ("000.tar/red.png", "truncated", f"1000 of {len(data)} bytes")
    ]
