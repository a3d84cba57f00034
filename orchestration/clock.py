"""Seconds per step of a run, for asset metadata and the benchmarks."""

from __future__ import annotations

import time


class Clock:
    """`lap(name)` adds the seconds since the last lap (or since the clock was made) to
    `laps[name]`."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self.started = self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = self.laps.get(name, 0.0) + now - self.last
        self.last = now

    def total(self, digits: int = 4) -> dict[str, float]:
        """The laps rounded to `digits`, with `total`: the seconds since the clock was made."""
        laps = {name: round(seconds, digits) for name, seconds in self.laps.items()}
        return {**laps, "total": round(time.perf_counter() - self.started, digits)}
