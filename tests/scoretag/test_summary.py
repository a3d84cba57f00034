"""The run summary prints what failed word for word: a reason that names a setting in
brackets (`[head] min_labels`) is text, not markup for the terminal to eat."""

from __future__ import annotations

from orchestration.runner import RunOutcome
from scoretag.cli.common import console
from scoretag.cli.summary import print_runs


def test_failures_and_check_descriptions_keep_their_brackets():
    failure = "aesthetic_head: 12 labels, below 50 ([head] min_labels)"
    check = {
        "asset": "embeddings",
        "check": "no_failed_images",
        "partition": "danbooru/x.json",
        "passed": False,
        "severity": "WARN",
        "description": "2 images [a.png, b.png] could not be decoded",
    }
    outcome = RunOutcome(run_ids=["r"], success=False, failures=[failure], checks=[check])
    with console.capture() as captured:
        print_runs(outcome)
    text = captured.get()
    assert failure in text
    assert "embeddings.no_failed_images [danbooru/x.json]: 2 images [a.png, b.png]" in text
