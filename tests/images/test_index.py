"""The index is refreshed from what changed: unchanged folders are not listed again,
unchanged tar shards and index files not read again, and what disappeared drops out."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import polars as pl

from assets.images import index
from assets.images.sources import Source
from tests.images.helpers import index_of, write_tar


def _settle(*folders: Path) -> None:
    """Date folders modified just now back by a minute: a folder modified in the last
    seconds is listed again anyway."""
    now = time.time()
    for folder in folders:
        for path in [folder, *(p for p in folder.rglob("*") if p.is_dir())]:
            if path.stat().st_mtime > now - 10:
                os.utime(path, (now - 60, now - 60))


def _md5_file(folder: Path, data: bytes) -> Path:
    path = folder / data.hex()[:2] / f"{hashlib.md5(data).hexdigest()}.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_a_rescan_reads_only_what_changed(tmp_path: Path):
    root = tmp_path / "images"
    for i in range(40):
        _md5_file(root, bytes([i, i]))
    write_tar(root / "shards" / "00000.tar", [(f"{hashlib.md5(b'a').hexdigest()}.png", b"a")])
    write_tar(root / "shards" / "00001.tar", [(f"{hashlib.md5(b'b').hexdigest()}.png", b"b")])
    _settle(root)
    folder, sources = tmp_path / "index", [Source(str(root))]
    first = index.refresh(folder, sources)
    assert (first.folders_listed, first.tars_read) == (first.folders, 2)
    assert index.load(folder, sources).height == 42

    again = index.refresh(folder, sources)
    assert (again.folders_listed, again.tars_read, again.parts_written) == (0, 0, 0)

    new = _md5_file(root, b"\x00\x07")  # into the existing folder 00/
    write_tar(root / "shards" / "00001.tar", [(f"{hashlib.md5(b'c').hexdigest()}.png", b"c")])
    (root / "shards" / "00000.tar").unlink()
    _settle(root)
    third = index.refresh(folder, sources)
    assert third.folders_listed == 2  # 00/ and shards/
    assert third.tars_read == 1 and third.tars == 1
    entries = index.load(folder, sources)
    assert entries.height == 42  # 40 + 1 new file + 1 member of the rewritten shard
    assert str(new) in set(entries["path"])
    assert hashlib.md5(b"a").hexdigest() not in set(entries["md5"])
    assert hashlib.md5(b"c").hexdigest() in set(entries["md5"])

    removed = root / "00"
    for path in removed.iterdir():
        path.unlink()
    removed.rmdir()
    _settle(root)
    fourth = index.refresh(folder, sources)
    assert fourth.folders_listed == 1  # the root, which lost 00/
    assert not index.load(folder, sources)["path"].str.contains("/00/").any()


def test_a_file_named_by_nothing_is_hashed_once(tmp_path: Path):
    root = tmp_path / "images"
    root.mkdir()
    (root / "photo.jpg").write_bytes(b"unnamed")
    _settle(root)
    folder, sources = tmp_path / "index", [Source(str(root))]
    assert index.refresh(folder, sources).files_hashed == 1
    (root / "other.txt").write_text("listed again, not hashed again")
    _settle(root)
    again = index.refresh(folder, sources)
    assert (again.folders_listed, again.files_hashed) == (1, 0)
    assert index.load(folder, sources)["md5"].to_list() == [hashlib.md5(b"unnamed").hexdigest()]


def test_an_index_file_is_read_again_only_when_it_changes(tmp_path: Path):
    listing = tmp_path / "listing.csv"
    pl.DataFrame({"path": ["a.jpg"], "md5": ["a" * 32]}).write_csv(listing)
    root = tmp_path / "images"
    root.mkdir()
    sources = [{"path": str(root), "index": str(listing)}]
    layout_index = index_of(tmp_path, root, sources)
    assert layout_index["path"].to_list() == [str(root / "a.jpg")]
    folder = tmp_path / "data" / "images" / "index"
    source = Source(str(root), "index", index=str(listing))
    assert index.refresh(folder, [source]).listings_read == 0
    pl.DataFrame({"path": ["b.jpg"], "md5": ["b" * 32]}).write_csv(listing)
    os.utime(listing, (time.time() + 5, time.time() + 5))
    assert index.refresh(folder, [source]).listings_read == 1
    assert index.load(folder, [source])["md5"].to_list() == ["b" * 32]


def test_a_source_dropped_from_the_profile_drops_out(tmp_path: Path):
    a, b = tmp_path / "a", tmp_path / "b"
    _md5_file(a, b"one")
    _md5_file(b, b"two")
    _settle(a, b)
    folder = tmp_path / "index"
    index.refresh(folder, [Source(str(a)), Source(str(b))])
    assert index.load(folder, [Source(str(a)), Source(str(b))]).height == 2
    index.refresh(folder, [Source(str(a))])
    assert index.load(folder, [Source(str(a))]).height == 1
    assert len(list((folder / "parts").iterdir())) == 1


def test_nested_sources_are_each_scanned_once(tmp_path: Path):
    root = tmp_path / "images"
    _md5_file(root, b"loose")
    write_tar(root / "danbooru2023" / "data-0000.tar", [("12.jpg", b"x")])
    _settle(root)
    sources = [
        Source(str(root)),
        Source(str(root / "danbooru2023"), "post_id", "danbooru"),
    ]
    folder = tmp_path / "index"
    index.refresh(folder, sources)
    entries = index.load(folder, sources)
    assert entries.height == 2
    assert entries.filter(pl.col("kind") == "tar")["post_key"].to_list() == ["danbooru:12"]


def test_an_index_in_an_older_format_is_rebuilt(tmp_path):
    root = tmp_path / "images"
    root.mkdir()
    (root / ("ab" * 16 + ".jpg")).write_bytes(b"x")
    folder = tmp_path / "index"
    (folder / "parts" / "old").mkdir(parents=True)
    (folder / "parts" / "old" / "00.parquet").write_bytes(b"format 1")
    (folder / "folders.parquet").write_bytes(b"format 1")
    source = Source(str(root))
    assert not index.exists(folder)
    index.refresh(folder, [source])
    assert index.exists(folder) and (folder / "FORMAT").read_text().strip() == index.FORMAT
    assert not (folder / "parts" / "old").exists()
    assert index.load(folder, [source])["md5"].to_list() == ["ab" * 16]
