"""GPU leases and device choice, without CUDA: the device count and ids are injected."""

from __future__ import annotations

import multiprocessing
import time

import pytest

from orchestration import devices
from orchestration.devices import lease_gpu, lock_dir, physical_ids, resolve_device, slot_warning


def _lease_and_hold(directory, ids, ready, release, out) -> None:
    lease = lease_gpu(directory, ids, timeout_s=30, poll_s=0.05)
    out.put(lease.physical)
    ready.set()
    release.wait(30)


def test_concurrent_processes_get_distinct_gpus_and_a_released_one_is_reused(tmp_path):
    ids = ["0", "1", "2"]
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    release = ctx.Event()
    workers = []
    for _ in ids:
        ready = ctx.Event()
        worker = ctx.Process(target=_lease_and_hold, args=(tmp_path, ids, ready, release, out))
        worker.start()
        assert ready.wait(30)
        workers.append(worker)
    taken = sorted(out.get(timeout=5) for _ in ids)
    assert taken == ids  # three processes, three different GPUs

    # All taken: a fourth cannot get one now...
    with pytest.raises(TimeoutError, match="all 3 GPUs are held"):
        lease_gpu(tmp_path, ids, timeout_s=0.2, poll_s=0.05)
    # ...and gets the first one back once the processes holding them end (their locks go
    # with them, as after a SIGKILL).
    release.set()
    for worker in workers:
        worker.join(10)
        assert worker.exitcode == 0
    lease = lease_gpu(tmp_path, ids, timeout_s=5, poll_s=0.05)
    assert lease.index == 0 and lease.device == "cuda:0"
    lease.release()


def test_a_waiting_step_gets_the_gpu_released_while_it_waits(tmp_path):
    ids = ["0", "1"]
    held = [lease_gpu(tmp_path, ids), lease_gpu(tmp_path, ids)]
    assert [h.index for h in held] == [0, 1]  # one process, two leases: two GPUs

    # spawn: a forked child would inherit (and so keep) this process's locks.
    ctx = multiprocessing.get_context("spawn")
    out, ready, release = ctx.Queue(), ctx.Event(), ctx.Event()
    waiter = ctx.Process(target=_lease_and_hold, args=(tmp_path, ids, ready, release, out))
    waiter.start()
    time.sleep(3)  # spawn starts a fresh interpreter
    assert not ready.is_set()  # all busy: it waits
    held[1].release()
    assert ready.wait(10)
    assert out.get(timeout=5) == "1"
    release.set()
    waiter.join(10)
    held[0].release()


def test_a_lease_after_release_is_reused_in_order(tmp_path):
    ids = ["0", "1"]
    first = lease_gpu(tmp_path, ids)
    first.release()
    again = lease_gpu(tmp_path, ids)
    assert again.index == 0
    again.release()


def test_cuda_visible_devices_names_the_physical_gpus():
    assert physical_ids(2, {}) == ["0", "1"]
    assert physical_ids(2, {"CUDA_VISIBLE_DEVICES": "3, 1"}) == ["3", "1"]
    assert physical_ids(1, {"CUDA_VISIBLE_DEVICES": "GPU-8f2e"}) == ["GPU-8f2e"]


def test_processes_seeing_different_subsets_agree_on_whose_gpu_it_is(tmp_path):
    # One process sees GPUs 2 and 3 (as cuda:0, cuda:1); another all four.
    mine = lease_gpu(tmp_path, physical_ids(2, {"CUDA_VISIBLE_DEVICES": "2,3"}))
    assert (mine.index, mine.physical) == (0, "2")
    theirs = [lease_gpu(tmp_path, ["0", "1", "2", "3"]) for _ in range(3)]
    assert [t.physical for t in theirs] == ["0", "1", "3"]  # physical 2 is taken
    for lease in [mine, *theirs]:
        lease.release()


def test_leases_are_per_host_so_a_shared_volume_does_not_mix_machines(tmp_path):
    a = lease_gpu(lock_dir(tmp_path, "node-a"), ["0"])
    b = lease_gpu(lock_dir(tmp_path, "node-b"), ["0"])  # a pod on another node: its own GPU 0
    assert a.device == b.device == "cuda:0"
    a.release()
    b.release()


def test_explicit_cuda_index_stays_explicit_and_is_checked():
    assert resolve_device("cuda:1", cuda_count=2) == "cuda:1"
    assert resolve_device("cuda", cuda_count=2) == "cuda"
    assert resolve_device("auto", cuda_count=4) == "cuda"
    with pytest.raises(RuntimeError, match="sees 2 CUDA device"):
        resolve_device("cuda:2", cuda_count=2)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        resolve_device("cuda:0", cuda_count=0)


def test_claim_without_cuda_is_the_resolved_device_and_leases_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(devices, "_cuda_count", lambda: 0)
    assert devices.claim_device("cpu", tmp_path) == "cpu"
    assert not (tmp_path / "locks").exists()


def test_gpu_slots_beyond_the_gpus_are_named():
    assert slot_warning(2, "auto", 2, "multiprocess") is None
    assert slot_warning(1, "cuda:1", 4, "multiprocess") is None
    assert slot_warning(4, "cuda", 0, "multiprocess") is None  # no GPU: steps run on the CPU
    assert slot_warning(4, "cuda", 1, "k8s") is None  # a pod per step, each with its GPU
    assert "set gpu_slots = 2" in slot_warning(4, "cuda", 2, "multiprocess")
    assert "share that one GPU" in slot_warning(2, "cuda:1", 4, "multiprocess")
