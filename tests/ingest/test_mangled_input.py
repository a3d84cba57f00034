"""Property tests: every adapter, fed mangled records, never crashes.

Records start as valid ones (written by the demo's site writers, in each site's format);
hypothesis replaces values with arbitrary JSON, deletes fields, truncates the file or
splices in garbage. Ingestion must then load what it can and quarantine the rest with a
reason, or refuse the whole file with a clear error; any other exception is a bug.
"""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assets.ingest.formats import UnknownFormat, detect
from assets.ingest.reader import ingest_file
from assets.ingest.schema import RATINGS
from orchestration.settings import DemoSettings
from orchestration.storage import Layout
from scoretag.demo.build import build_demo
from scoretag.demo.writers import danbooru, derpibooru, e621, gelbooru

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=30),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


@pytest.fixture(scope="module")
def posts(tmp_path_factory) -> pl.DataFrame:
    layout = Layout(home=tmp_path_factory.mktemp("small-demo"))
    return build_demo(layout, DemoSettings(images=60, posts=400)).posts


def _records(posts: pl.DataFrame, kind: str, build) -> list[dict]:
    return [build(p) for p in posts.filter(pl.col("source_kind") == kind).head(6).to_dicts()]


def _mangle(draw, records: list, scalar_only: bool = False) -> list:
    records = [dict(r) for r in records]
    for _ in range(draw(st.integers(1, 6))):
        record = records[draw(st.integers(0, len(records) - 1))]
        key = draw(st.sampled_from(sorted(record)))
        if draw(st.booleans()):
            del record[key]
        else:
            record[key] = draw(st.text(max_size=20) if scalar_only else values)
    return records


def _damage(draw, data: bytes) -> bytes:
    choice = draw(st.sampled_from(["none", "truncate", "splice"]))
    if choice == "truncate" and data:
        return data[: draw(st.integers(0, len(data)))]
    if choice == "splice":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.binary(max_size=20)) + data[at:]
    return data


def _csv(rows: list[dict]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=e621.CSV_COLUMNS, extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def _xml(rows: list[dict]) -> bytes:
    root = ET.Element("posts", {"count": str(len(rows)), "offset": "0"})
    for row in rows:
        ET.SubElement(root, "post", {k: str(v) for k, v in row.items()})
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _csv_record(post: dict) -> dict:
    return dict(zip(e621.CSV_COLUMNS, e621.csv_row(post), strict=True))


def _dump_record(post: dict) -> dict:
    import numpy as np

    return danbooru.dump_record(post, np.random.default_rng(0))


FORMATS = {
    # name: (source kind, record builder, serializer, scalar fields only)
    "danbooru_api": (
        "danbooru_api",
        danbooru.api_record,
        lambda rs: json.dumps(rs).encode(),
        False,
    ),
    "danbooru_dump": (
        "danbooru_dump",
        _dump_record,
        lambda rs: "\n".join(json.dumps(r) for r in rs).encode(),
        False,
    ),
    "e621_api": ("e621_api", e621.api_record, lambda rs: json.dumps({"posts": rs}).encode(), False),
    "e621_csv": ("e621_csv", _csv_record, _csv, True),
    "philomena_api": (
        "derpibooru_api",
        derpibooru.image_record,
        lambda rs: json.dumps({"images": rs, "total": len(rs)}).encode(),
        False,
    ),
    "gelbooru_json": (
        "gelbooru_json",
        gelbooru.json_record,
        lambda rs: json.dumps({"@attributes": {"count": len(rs)}, "post": rs}).encode(),
        False,
    ),
    "gelbooru_xml": ("gelbooru_xml", gelbooru.xml_attributes, _xml, True),
}
SUFFIX = {"danbooru_dump": ".jsonl", "e621_csv": ".csv", "gelbooru_xml": ".xml"}


def test_every_registered_format_is_fuzzed():
    from assets.ingest.formats import formats

    assert {f.name for f in formats()} == set(FORMATS)


@pytest.mark.parametrize("name", sorted(FORMATS))
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_mangled_records_never_crash_an_adapter(name: str, posts, tmp_path: Path, data):
    kind, build, serialize, scalar_only = FORMATS[name]
    records = data.draw(st.builds(lambda: _records(posts, kind, build)))
    mangled = _mangle(data.draw, records, scalar_only)
    raw = _damage(data.draw, serialize(mangled))
    path = tmp_path / f"posts{SUFFIX.get(name, '.json')}"
    path.write_bytes(raw)
    outs = [tmp_path / f"{t}.parquet" for t in ("posts", "q", "s")]
    try:
        site = detect(path).site if raw.strip() else "auto"
        report = ingest_file(
            path, *outs, site=site, threshold=1.0, ingested_at=datetime(2026, 1, 1, tzinfo=UTC)
        )
    except UnknownFormat:
        return  # refused as a whole, with a message: allowed
    loaded = pl.read_parquet(outs[0])
    assert report.posts == loaded.height
    assert loaded["post_id"].null_count() == 0 and loaded["created_at"].null_count() == 0
    assert set(loaded["rating"]) <= set(RATINGS)
    for column in ("up_votes", "down_votes", "favorites"):
        assert (loaded[column].drop_nulls() >= 0).all()
    quarantine = pl.read_parquet(outs[1])
    assert quarantine["reason"].null_count() == 0
