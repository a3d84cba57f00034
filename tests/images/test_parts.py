"""The index's parts: a rescan rewrites the parts of what it re-read, puts units never seen
in parts of their own, and reads only the parts its map names."""

from __future__ import annotations

import polars as pl

from assets.images import parts as parts_module
from assets.images.parts import Parts

SCHEMA = {"dir": pl.String, "name": pl.String}


def _entries(units: dict[str, int]) -> pl.DataFrame:
    rows = [(u, f"{u}-{i}") for u, n in units.items() for i in range(n)]
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")


def _all(store: Parts) -> pl.DataFrame:
    return pl.read_parquet(store.files()).sort("dir", "name")


def test_new_units_get_new_parts_known_units_keep_theirs(tmp_path, monkeypatch):
    monkeypatch.setattr(parts_module, "PART_ROWS", 100)
    store = Parts(tmp_path, SCHEMA)
    first = {f"/root/{i:02x}": 40 for i in range(10)}  # 400 entries: 4 parts
    assert store.rewrite(set(first), lambda before: _entries(first)) == 4
    assert _all(store).height == 400
    before = {p.name: p.stat().st_mtime_ns for p in store.files()}

    day = {f"/root/fetched/2026-12-03/{i:02x}": 3 for i in range(10)}  # 30 new entries
    assert store.rewrite(set(day), lambda before: _entries(day)) == 1  # one new part
    assert {p.name: p.stat().st_mtime_ns for p in store.files() if p.name in before} == before
    assert _all(store).height == 430

    changed = {"/root/00": 41}  # a known folder gained a file: only its part is rewritten
    seen = []
    written = store.rewrite(set(changed), lambda b: (seen.append(b.height), _entries(changed))[1])
    assert written == 1 and seen == [40]
    assert _all(store).height == 431
    gone = {"/root/01": 0}  # a folder emptied: its entries drop out
    store.rewrite(set(gone), lambda before: _entries({}))
    assert "/root/01" not in store.units() and _all(store).height == 391


def test_a_part_the_map_does_not_name_is_ignored_then_removed(tmp_path):
    store = Parts(tmp_path, SCHEMA)
    store.rewrite({"/a"}, lambda before: _entries({"/a": 2}))
    _entries({"/b": 5}).write_parquet(tmp_path / "p-000009-000.parquet")  # a killed scan's
    assert _all(store).height == 2
    store.rewrite({"/c"}, lambda before: _entries({"/c": 1}))
    assert not (tmp_path / "p-000009-000.parquet").exists()
    assert sorted(store.units()) == ["/a", "/c"]
