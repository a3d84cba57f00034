"""Seconds per step of a run, for asset metadata and the benchmarks."""

from __future__ import annotations

import time


class Clock:
    """`lap(name)` adds the seconds since the last lap (or since the clock was made) to
    `laps[name]`."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = self.laps.get(name, 0.0) + now - self.last
        self.last = now
