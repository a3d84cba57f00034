"""`scoretag info` lists the GPUs (injected: no CUDA here), and `scoretag run`'s status line
carries a bar per embeddings step that reports progress."""

from __future__ import annotations

from click.testing import CliRunner

from orchestration import devices
from orchestration.devices import Gpu
from orchestration.progress import report
from scoretag.cli import cli
from scoretag.cli.progress import run_status


def test_info_lists_the_gpus_and_warns_about_slots_beyond_them(tmp_path, monkeypatch):
    gpus = [Gpu(0, "0", "NVIDIA H200", 141 * 2**30), Gpu(1, "1", "NVIDIA H200", 141 * 2**30)]
    monkeypatch.setattr(devices, "cuda_devices", lambda: gpus)
    config = tmp_path / "four.toml"
    config.write_text('gpu_slots = 4\n[backbone]\ndevice = "auto"\n')
    result = CliRunner().invoke(cli, ["--home", str(tmp_path), "--config", str(config), "info"])
    assert result.exit_code == 0, result.output
    assert "cuda:0 NVIDIA H200, 141 GiB; cuda:1 NVIDIA H200, 141 GiB" in result.output
    assert "set gpu_slots = 2" in result.output


def test_info_says_when_there_is_no_gpu(tmp_path, monkeypatch):
    monkeypatch.setattr(devices, "cuda_devices", lambda: [])
    result = CliRunner().invoke(cli, ["--home", str(tmp_path), "info"])
    assert "none (CUDA not available)" in result.output and "warning" not in result.output


def test_run_status_shows_a_bar_per_reporting_step_until_it_is_done():
    with run_status("running main...") as status:
        status.update("embed danbooru/a.jsonl")
        report("embeddings danbooru/a.jsonl", 10, 100, 1)
        (task,) = [t for t in status.bars.tasks if t.total is not None]
        assert (task.description, task.completed, task.fields["failed"]) == (
            "embeddings danbooru/a.jsonl",
            10,
            1,
        )
        report("embeddings danbooru/a.jsonl", 100, 100, 1)
        assert [t.description for t in status.bars.tasks] == ["embed danbooru/a.jsonl"]
    report("embeddings danbooru/b.jsonl", 1, 2)  # no listener left: nothing happens
