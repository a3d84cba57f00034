"""`scoretag images urls` and `scoretag images fetch` on a storage root holding one ingested
Danbooru API page whose posts point at a local HTTP server."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from assets.images.quarantine import read_quarantine
from assets.images.urls import URL_LIST
from assets.ingest.paths import RawFile
from assets.ingest.reader import ingest_file
from orchestration.profile import load_profile
from scoretag.cli import cli
from tests.images.server import ImageServer, danbooru_record, demo_files

UA = "scoretag-tests/1.0 (by tester; tester@example.org)"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return demo_files(6, tmp_path_factory.mktemp("demo_images"))


@pytest.fixture
def server():
    with ImageServer() as s:
        yield s


def write_config(tmp_path: Path, **images) -> Path:
    fields = {"user_agent": UA, "backoff_s": 0.05, "timeout_s": 2, "rate_limit": 0, **images}
    lines = ["[images]", *(f"{k} = {json.dumps(v)}" for k, v in fields.items())]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def ingest_page(home: Path, records: list[dict]) -> None:
    """The page as the ingest step leaves it: raw_posts tables under the storage root."""
    layout = load_profile(home=home).layout.ensure()
    raw = RawFile("danbooru", "posts-page1.json")
    raw.path(layout).write_text(json.dumps(records))
    tables = [raw.output(layout, t) for t in ("posts", "quarantine", "skipped")]
    for table in tables:
        table.parent.mkdir(parents=True, exist_ok=True)
    ingest_file(raw.path(layout), *tables, site="danbooru", source_file=raw.key)


@pytest.fixture
def home(tmp_path, files, server):
    """Posts 1-4 served as they are; post 5 a 404; post 6 answered with post 1's bytes."""
    for f in files[:4]:
        server.add(f.path, f.data)
    server.add(files[4].path, files[4].data, "404")
    server.add(files[5].path, files[0].data)
    records = [danbooru_record(i + 1, f, server.base) for i, f in enumerate(files)]
    records.append({**danbooru_record(7, files[0], server.base), "is_banned": True})
    del records[-1]["md5"], records[-1]["file_url"]  # Danbooru hides a banned post's file
    home = tmp_path / "home"
    ingest_page(home, records)
    return home


def invoke(home: Path, config: Path, *args: str):
    return CliRunner().invoke(cli, ["--home", str(home), "--config", str(config), *args])


def stored(home: Path) -> dict[str, bytes]:
    fetched = home / "images" / "fetched"
    return {p.stem: p.read_bytes() for p in fetched.rglob("*.*") if not p.name.startswith(".")}


def test_urls_lists_what_is_missing_for_img2dataset(home, files, tmp_path):
    out = tmp_path / "urls.parquet"
    result = invoke(home, write_config(tmp_path), "images", "urls", "--out", str(out))
    assert result.exit_code == 0, result.output
    listed = pl.read_parquet(out)
    assert dict(listed.schema) == URL_LIST
    assert listed["post_key"].to_list() == [f"danbooru:{i}" for i in range(1, 7)]
    assert listed["md5"].to_list() == [f.md5 for f in files]
    assert all(url.startswith("http://127.0.0.1:") for url in listed["url"])
    assert "1 no url" in result.output  # the banned post


def test_fetch_stores_checked_files_quarantines_the_rest_and_resumes(home, files, server, tmp_path):
    config = write_config(tmp_path, concurrency=3)
    result = invoke(home, config, "images", "fetch")
    assert result.exit_code == 0, result.output
    kept = stored(home)
    assert set(kept) == {f.md5 for f in files[:4]}
    assert all(hashlib.md5(data).hexdigest() == md5 for md5, data in kept.items())
    assert files[5].md5 not in kept  # its body was post 1's file: never stored under post 6
    failed = read_quarantine(load_profile(home=home).layout).sort("post_key")
    assert failed.select("post_key", "reason", "http_status").rows() == [
        ("danbooru:5", "http 404", 404),
        ("danbooru:6", "md5 mismatch", 200),
    ]
    assert failed["bytes"].to_list() == [0, len(files[0].data)]
    for text in ("fetched", "http 404", "md5 mismatch"):
        assert text in result.output
    assert {hit.user_agent for hit in server.hits} == {UA}

    server.hits.clear()  # again: nothing to ask, the stored and the given up are left out
    again = invoke(home, config, "images", "fetch")
    assert again.exit_code == 0, again.output
    assert "0 images to fetch" in again.output and "4 already stored" in again.output
    assert "2 failed before" in again.output and server.hits == []

    retried = invoke(home, config, "images", "fetch", "--retry-failed")
    assert retried.exit_code == 0, retried.output
    assert sorted(hit.path for hit in server.hits) == sorted([files[4].path, files[5].path])


def test_files_stored_on_an_earlier_day_are_not_fetched_again(home, files, server, tmp_path):
    config = write_config(tmp_path)
    assert invoke(home, config, "images", "fetch").exit_code == 0
    fetched = load_profile(home=home).layout.images / "fetched"
    [today] = [p for p in fetched.iterdir() if not p.name.startswith(".")]
    os.rename(today, fetched / "2026-01-01")  # as if fetched on an earlier day
    server.hits.clear()
    again = invoke(home, config, "images", "fetch")
    assert again.exit_code == 0, again.output
    assert "4 already stored" in again.output and server.hits == []
    assert set(stored(home)) == {f.md5 for f in files[:4]}


def test_fetch_limit_and_site(home, files, server, tmp_path):
    config = write_config(tmp_path)
    assert invoke(home, config, "images", "fetch", "--site", "e621").exit_code == 0
    assert server.hits == []  # no e621 posts
    result = invoke(home, config, "images", "fetch", "--limit", "2")
    assert result.exit_code == 0, result.output
    assert len(server.hits) == 2 and len(stored(home)) == 2


def test_fetch_without_a_user_agent_says_how_to_set_one(home, tmp_path, server):
    result = invoke(home, write_config(tmp_path, user_agent=""), "images", "fetch")
    assert result.exit_code != 0
    assert "[images] user_agent" in result.output and server.hits == []


def img2dataset_shard(listed: pl.DataFrame, files, folder: Path) -> Path:
    """The tar and parquet img2dataset's webdataset writer makes of this URL list with the
    README's options: members `<shard><index>.jpg` (the bytes as served, whatever their
    format) beside a `.json` of the saved columns, the computed md5 and the status."""
    import io
    import tarfile

    by_md5 = {f.md5: f for f in files}
    folder.mkdir(parents=True)
    shard = folder / "00000.tar"
    with tarfile.open(shard, "w") as tar:
        for i, row in enumerate(listed.iter_rows(named=True)):
            key = f"{i:09d}"
            data = by_md5[row["md5"]].data
            meta = {
                "url": row["url"],
                "key": key,
                "status": "success",
                "error_message": None,
                "width": None,
                "height": None,
                "post_key": row["post_key"],
                "site": row["site"],
                "post_id": row["post_id"],
                "md5": hashlib.md5(data).hexdigest(),
            }
            for name, payload in ((f"{key}.jpg", data), (f"{key}.json", json.dumps(meta).encode())):
                info = tarfile.TarInfo(name)
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
    return shard


def test_the_url_list_through_img2dataset_is_found_by_the_index(home, files, tmp_path):
    config = write_config(tmp_path)
    out = tmp_path / "urls.parquet"
    assert invoke(home, config, "images", "urls", "--out", str(out)).exit_code == 0
    listed = pl.read_parquet(out)
    img2dataset_shard(listed, files, home / "images" / "img2dataset" / "20260301")
    assert invoke(home, config, "images", "scan").exit_code == 0
    again = invoke(home, config, "images", "urls", "--out", str(out))
    assert again.exit_code == 0, again.output
    assert pl.read_parquet(out).height == 0  # every member found, by its sidecar's md5 and
    assert "6 already stored" in again.output  # saved post_key: nothing left to download
