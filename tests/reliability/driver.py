"""Starting tests/reliability/killable.py in its own process and waiting for it to reach a
point, for the tests that kill it there or run beside it."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.killable", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        start_new_session=True,  # its workers die with it
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def reach(process: subprocess.Popen, point: str, timeout_s: float = 120) -> None:
    """Wait until the process prints `at POINT`; fail with its stderr if it ends first."""
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=1) and (line := process.stdout.readline()):
                if line.strip() == f"at {point}":
                    return
                continue
            if process.poll() is not None:
                raise AssertionError(f"it ended before {point}:\n{process.stderr.read()[-3000:]}")
    kill(process)
    raise AssertionError(f"it did not reach {point} in {timeout_s} s")


def kill(process: subprocess.Popen) -> None:
    """SIGKILL, as the OOM killer or a lost node would: no handler, no cleanup."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    process.stdout.close()
    process.stderr.close()


def release_later(release: Path, after_s: float) -> threading.Timer:
    """Let a held process go on `after_s` from now (while this thread waits for it)."""
    timer = threading.Timer(after_s, release.touch)
    timer.start()
    return timer
