"""Progress bars for image embedding: `scoretag embed`'s own, and the embeddings steps of
`scoretag run` (which report through orchestration.progress)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from scoretag.cli.common import console


class ImagesPerSecond(ProgressColumn):
    """images/s over the last few seconds, and the failures so far."""

    def render(self, task: Task) -> Text:
        if task.total is None:
            return Text("")
        speed = task.finished_speed or task.speed
        failed = task.fields.get("failed", 0)
        rate = f"{speed:,.0f} images/s" if speed else "- images/s"
        return Text(f"{rate}, {failed:,} failed" if failed else rate)


class _IfCounted(ProgressColumn):
    """A column shown only for tasks with a total (not for the status line)."""

    def __init__(self, column: ProgressColumn):
        super().__init__()
        self.column = column

    def render(self, task: Task):
        return self.column.render(task) if task.total is not None else Text("")


def image_bars(transient: bool = False) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        _IfCounted(BarColumn()),
        _IfCounted(MofNCompleteColumn()),
        ImagesPerSecond(),
        _IfCounted(TimeElapsedColumn()),
        _IfCounted(TextColumn("ETA")),
        _IfCounted(TimeRemainingColumn()),
        console=console,
        transient=transient,
        speed_estimate_period=10.0,
    )


class RunStatus:
    """What `console.status` gives (`update(text)`), with a bar per embeddings step."""

    def __init__(self, bars: Progress, text: str):
        self.bars = bars
        self.status = bars.add_task(text, total=None)
        self.tasks: dict[str, int] = {}

    def update(self, text: str) -> None:
        self.bars.update(self.status, description=text)

    def on_progress(self, task: str, done: int, total: int, failed: int) -> None:
        if task not in self.tasks:
            self.tasks[task] = self.bars.add_task(task, total=total, failed=0)
        self.bars.update(self.tasks[task], completed=done, total=total, failed=failed)
        if done >= total:
            self.bars.remove_task(self.tasks.pop(task))


@contextmanager
def run_status(text: str) -> Iterator[RunStatus]:
    """A status line like `console.status(text)`, plus a progress bar (images/s, ETA) for
    each embeddings step that runs in this process meanwhile."""
    from orchestration.progress import listening

    with image_bars(transient=True) as bars:
        status = RunStatus(bars, text)
        with listening(status.on_progress):
            yield status
