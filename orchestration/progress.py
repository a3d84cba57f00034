"""Progress of long steps, for whoever listens in the same process.

A step reports (task, done, total, failed) as it goes; a command that runs the step in its
own process (`scoretag run` executes jobs in process) listens and draws a progress bar. A
step run in another process (the UI's runs) has no listener here: its log says how far it
got. Nothing here prints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

Listener = Callable[[str, int, int, int], None]  # task, done, total, failed

_listeners: list[Listener] = []


def report(task: str, done: int, total: int, failed: int = 0) -> None:
    for listener in list(_listeners):
        listener(task, done, total, failed)


@contextmanager
def listening(listener: Listener) -> Iterator[Listener]:
    """Call `listener` with every report made in this process until the block ends."""
    _listeners.append(listener)
    try:
        yield listener
    finally:
        _listeners.remove(listener)
