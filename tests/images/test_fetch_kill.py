"""A download killed outright (SIGKILL, mid-file) leaves whole, verified files and a partial
temporary file; the next run discards the partial and fetches only what is not stored."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from assets.images.fetch import Job, Policy, fetch_all
from tests.images.server import ImageServer, demo_files

ROOT = Path(__file__).resolve().parents[2]
UA = "scoretag-tests/1.0 (by tester; tester@example.org)"
CHILD = """
import asyncio, json, sys
from pathlib import Path
from assets.images.fetch import Job, Policy, fetch_all
jobs = [Job(**j) for j in json.loads(sys.argv[2])]
policy = Policy(user_agent=sys.argv[3], concurrency=1)
asyncio.run(fetch_all(jobs, Path(sys.argv[1]), policy))
"""


def _wait_for(condition, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:  # renamed into place meanwhile
        return 0


def _kill_mid_file(child: subprocess.Popen, mid_file) -> None:
    """SIGKILL the child while `mid_file()` holds. The child is stopped before the kill and the
    condition checked again: on a loaded machine it may finish the file between a check and a
    kill that follows it."""
    end = time.monotonic() + 30
    while True:
        _wait_for(mid_file, timeout=max(0.1, end - time.monotonic()))
        os.kill(child.pid, signal.SIGSTOP)
        if mid_file():
            os.kill(child.pid, signal.SIGKILL)
            return
        os.kill(child.pid, signal.SIGCONT)


def test_killed_mid_file_the_rerun_fetches_only_the_rest(tmp_path):
    files = demo_files(8, tmp_path / "demo")
    root = tmp_path / "fetched"
    with ImageServer() as server:
        for f in files:  # each body arrives in two halves 0.3 s apart
            server.add(f.path, f.data, "dribble", delay=0.3)
        jobs = [Job(f"danbooru:{i}", "danbooru", server.base + f.path, f.md5, None, f.ext)
                for i, f in enumerate(files)]  # fmt: skip
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(root), json.dumps([j.__dict__ for j in jobs]), UA],
            cwd=ROOT,
        )
        try:
            whole = lambda: [p for p in root.rglob("*.*") if not p.name.startswith(".")]  # noqa: E731
            partial = lambda: [p for p in root.rglob(".*.tmp") if _size(p)]  # noqa: E731
            _kill_mid_file(child, lambda: len(whole()) >= 3 and bool(partial()))
        finally:
            child.wait(timeout=30)
        assert child.returncode == -signal.SIGKILL
        [left] = partial()
        assert left.stat().st_size > 0  # half a file, under a hidden temporary name
        kept = {p.stem for p in whole()}
        assert 3 <= len(kept) < len(files)
        for p in whole():
            assert hashlib.md5(p.read_bytes()).hexdigest() == p.stem

        server.hits.clear()
        outcomes = asyncio.run(fetch_all(jobs, root, Policy(user_agent=UA, concurrency=4)))
        assert not left.exists()
        statuses = {o.job.md5: o.status for o in outcomes}
        assert {md5 for md5, s in statuses.items() if s == "skipped"} == kept
        assert {hit.path for hit in server.hits} == {f.path for f in files if f.md5 not in kept}
        for f in files:
            path = root / "danbooru" / f.md5[:2] / f"{f.md5}.{f.ext}"
            assert path.read_bytes() == f.data
