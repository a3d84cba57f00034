"""Locations on a local disk and on an fsspec filesystem (memory://, standing for s3:// or
gs://): the same calls write whole files and read them back."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from upath import UPath

from orchestration import objectstore


def test_local_paths_stay_paths_and_urls_become_fsspec_paths(tmp_path: Path):
    assert objectstore.location(tmp_path) == tmp_path
    assert objectstore.location(str(tmp_path)) == tmp_path
    assert objectstore.location(f"file://{tmp_path}") == tmp_path
    remote = objectstore.location("memory://bucket/prefix")
    assert isinstance(remote, UPath) and objectstore.is_remote(remote)
    assert not objectstore.is_remote(tmp_path)
    assert objectstore.url(remote / "x.parquet") == "memory://bucket/prefix/x.parquet"
    assert objectstore.filesystem(tmp_path) is None
    assert "memory" in objectstore.filesystem(remote).protocol


@pytest.fixture(params=["local", "memory"])
def root(request, tmp_path: Path, memory_root: str):
    return objectstore.location(tmp_path if request.param == "local" else memory_root)


def test_files_round_trip_on_either_filesystem(root):
    frame = pl.DataFrame({"image_key": ["a", "b"], "n": [1, 2]})
    objectstore.write_parquet(frame, root / "t" / "one.parquet")
    objectstore.write_parquet(frame.reverse(), root / "t" / "two.parquet")
    paths = sorted((root / "t").glob("*.parquet"))
    assert [p.name for p in paths] == ["one.parquet", "two.parquet"]
    assert objectstore.read_parquet(paths[0]).equals(frame)
    assert objectstore.read_parquet(paths, columns=["n"])["n"].to_list() == [1, 2, 2, 1]
    objectstore.write_bytes(root / "id.json", b"{}")
    assert (root / "id.json").read_bytes() == b"{}"
    assert objectstore.remove_orphans(root / "t") == []


def test_a_table_that_fails_to_encode_leaves_no_file(root, monkeypatch):
    table = pa.table({"k": ["a"]})
    objectstore.write_table(table, root / "kept.parquet")

    def crash(table, where, **options):
        if hasattr(where, "write"):
            where.write(b"PAR1 half a file")
        else:
            Path(where).write_bytes(b"PAR1 half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(pq, "write_table", crash)
    with pytest.raises(KeyboardInterrupt):
        objectstore.write_table(table, root / "lost.parquet")
    assert [p.name for p in root.glob("*")] == ["kept.parquet"]


def test_arrow_reads_remote_keys_through_their_filesystem(memory_root: str, tmp_path: Path):
    root = objectstore.location(memory_root)
    path = objectstore.write_table(pa.table({"k": ["a", "b"]}), root / "x.parquet")
    sources, fs = objectstore.arrow_sources([path])
    assert pq.read_table(sources, filesystem=fs)["k"].to_pylist() == ["a", "b"]
    with pytest.raises(ValueError, match="together"):
        objectstore.arrow_sources([path, tmp_path / "y.parquet"])


def test_duckdb_reads_a_glob_on_the_registered_filesystem(memory_root: str):
    root = objectstore.location(memory_root)
    for name in ("a", "b"):
        objectstore.write_table(pa.table({"k": [name]}), root / name / "part.parquet")
    glob = f"{objectstore.url(root)}/**/*.parquet"
    with duckdb.connect() as con:
        objectstore.register(con, root)
        objectstore.register(con, root)  # once per connection, however often asked
        rows = con.execute("SELECT k FROM read_parquet($g) ORDER BY k", {"g": glob}).fetchall()
    assert rows == [("a",), ("b",)]
