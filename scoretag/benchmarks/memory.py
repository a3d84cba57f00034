"""Peak memory, as benchmarks report it."""

from __future__ import annotations

import resource
import sys
from pathlib import Path

STATUS = Path("/proc/self/status")


def peak_rss_mb() -> float:
    """Peak resident memory of this process and of its finished children, in MB."""
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KB on Linux
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale
    return max(_own_peak_bytes(), children) / 1e6


def _own_peak_bytes() -> int:
    """This process's peak RSS. On Linux the address space's high-water mark (VmHWM): ru_maxrss
    keeps, across exec, the peak of the process it was forked from, so a bench step spawned by
    a parent holding gigabytes would report the parent's memory as its own."""
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
