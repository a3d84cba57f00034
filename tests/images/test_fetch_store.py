"""Where downloads go: a folder per UTC day under `fetched/`, one download at a time, stale
temporary files of a run killed on another day removed (test_fetch_cli: files stored on an
earlier day are found by the image index, not fetched again)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from assets.images.download import open_store


def test_a_store_per_day_one_download_at_a_time(tmp_path):
    fetched = tmp_path / "fetched"
    killed = fetched / "2026-01-01" / "danbooru" / "ab"
    killed.mkdir(parents=True)
    (killed.parent.parent / ".running").touch()  # that day's download never ended
    partial = killed / f".abc.jpg.{2**22 + 12345}.tmp"  # a pid that is not running
    partial.write_bytes(b"half")
    whole = killed / "abc.jpg"
    whole.write_bytes(b"whole")
    with open_store(fetched) as store:
        assert store.name == datetime.now(UTC).date().isoformat()
        assert (store / ".running").exists()
        assert not partial.exists() and whole.exists()
        assert not (killed.parent.parent / ".running").exists()
        with pytest.raises(RuntimeError, match="one at a time"), open_store(fetched):
            pass
    assert not (store / ".running").exists()
