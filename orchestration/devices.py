"""Which device a backbone runs on, and at what precision.

On a machine with several GPUs, each GPU step takes one of its own: `claim_device("cuda")`
(or "auto" where CUDA is present) leases the first free GPU by locking a file per device
(`fcntl.flock`) under `<storage root>/locks/gpus/<host>/`, and holds it until the process
exits (the kernel drops the lock then, even on SIGKILL, so a dead step never keeps a GPU).
When every GPU is taken, the step waits for one. Devices are numbered as CUDA numbers them
in the process, after `CUDA_VISIBLE_DEVICES`, and locked by the physical id that variable
gives, so processes that see different subsets still agree on which GPU is whose. A pod
with one GPU (Kubernetes) has its own host name and gets `cuda:0`. An explicit `cuda:N` is
used as it is, without a lease.
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_EXPLICIT_CUDA = re.compile(r"^cuda:(\d+)$")


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_device(requested: str, cuda_count: int | None = None) -> str:
    """`auto` is the best accelerator present: CUDA, then Apple's MPS, then the CPU. A device
    asked for but absent is an error, never a silent fallback."""
    import torch

    count = _cuda_count() if cuda_count is None else cuda_count
    explicit = _EXPLICIT_CUDA.match(requested)
    if requested == "cuda" or explicit:
        if count == 0:
            raise RuntimeError(
                f"backbone device {requested!r} was asked for but CUDA is not available"
            )
        if explicit and int(explicit.group(1)) >= count:
            raise RuntimeError(
                f"backbone device {requested!r} was asked for but this process sees "
                f"{count} CUDA device(s) (cuda:0 to cuda:{count - 1}; CUDA_VISIBLE_DEVICES="
                f"{os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')})"
            )
        return requested
    if requested == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError("backbone device 'mps' was asked for but MPS is not available")
    if requested != "auto":
        return requested
    if count:
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def autocast_dtype(precision: str, device: str) -> Any:
    """The dtype to autocast to, or None for fp32. CPUs get bf16 at most: their fp16 matmuls
    are slower than fp32 ones."""
    import torch

    if precision == "fp32":
        return None
    if device == "cpu":
        return torch.bfloat16 if precision == "bf16" else None
    return torch.float16 if precision == "fp16" else torch.bfloat16


@dataclass(frozen=True)
class Gpu:
    """One CUDA device as this process sees it."""

    index: int  # cuda:<index> in this process
    physical: str  # its entry in CUDA_VISIBLE_DEVICES (an index or a UUID), else the index
    name: str
    memory_bytes: int

    @property
    def device(self) -> str:
        return f"cuda:{self.index}"

    def describe(self) -> str:
        return f"{self.device} {self.name}, {self.memory_bytes / 2**30:.0f} GiB"


def physical_ids(count: int, environ: Mapping[str, str] | None = None) -> list[str]:
    """The physical id of each of the `count` devices this process numbers 0..count-1: the
    entries of CUDA_VISIBLE_DEVICES in order where it is set, else the indices."""
    environ = os.environ if environ is None else environ
    visible = [v.strip() for v in environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    return [visible[i] if i < len(visible) else str(i) for i in range(count)]


def cuda_devices() -> list[Gpu]:
    """The CUDA devices this process sees (none without CUDA)."""
    count = _cuda_count()
    if not count:
        return []
    import torch

    ids = physical_ids(count)
    properties = [torch.cuda.get_device_properties(i) for i in range(count)]
    return [Gpu(i, ids[i], p.name, int(p.total_memory)) for i, p in enumerate(properties)]


def describe(device: str) -> str:
    """A device as logs and metadata show it: a GPU with its name and memory."""
    explicit = _EXPLICIT_CUDA.match(device)
    if not explicit:
        return device
    gpus = cuda_devices()
    index = int(explicit.group(1))
    return gpus[index].describe() if index < len(gpus) else device


def lock_dir(root: str | Path, host: str | None = None) -> Path:
    """Where the GPU leases of this machine live: per host, as a storage root shared by many
    machines (a network volume) must not make two hosts' GPU 0 one device."""
    return Path(root) / "locks" / "gpus" / (host or socket.gethostname())


@dataclass
class Lease:
    """A GPU held by this process (its lock file stays locked while `fd` is open)."""

    index: int
    physical: str
    path: Path
    fd: int | None

    @property
    def device(self) -> str:
        return f"cuda:{self.index}"

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the file drops its flock
            self.fd = None


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
    return fd


def lease_gpu(
    directory: Path,
    physical: Sequence[str],
    timeout_s: float | None = None,
    poll_s: float = 1.0,
    on_wait: Callable[[str], None] = lambda message: None,
) -> Lease:
    """The first free GPU of `physical` (in this process's order), locked for this process;
    waits (polling every `poll_s`) while all are taken, up to `timeout_s` (None: for ever)."""
    if not physical:
        raise RuntimeError("no CUDA device to lease")
    directory.mkdir(parents=True, exist_ok=True)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    waited = False
    while True:
        for index, gpu in enumerate(physical):
            path = directory / f"gpu-{re.sub(r'[^A-Za-z0-9_.-]', '_', gpu)}.lock"
            fd = _try_lock(path)
            if fd is not None:
                return Lease(index, gpu, path, fd)
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"all {len(physical)} GPUs are held by other steps ({directory})")
        if not waited:
            on_wait(
                f"all {len(physical)} GPUs are held by other steps; waiting for one "
                f"(leases in {directory})"
            )
            waited = True
        time.sleep(poll_s)


_held: dict[str, Lease] = {}


def claim_device(
    requested: str, root: str | Path, on_wait: Callable[[str], None] = lambda message: None
) -> str:
    """The device a GPU step of this process runs on: for `cuda` (or `auto` with CUDA
    present) a free GPU of this machine, leased until the process exits (a second claim in
    the same process gets the same one); any other device as `resolve_device` gives it."""
    resolved = resolve_device(requested)
    if resolved != "cuda":
        return resolved
    directory = lock_dir(root)
    lease = _held.get(str(directory))
    if lease is None:
        lease = lease_gpu(directory, physical_ids(_cuda_count()), on_wait=on_wait)
        _held[str(directory)] = lease
    import torch

    # Pinned-memory threads and new tensors follow the current device: not GPU 0.
    torch.cuda.set_device(lease.index)
    return lease.device


def slot_warning(gpu_slots: int, requested: str, gpu_count: int, executor: str) -> str | None:
    """What is wrong with running `gpu_slots` GPU steps at once on this machine's GPUs, or
    None. On Kubernetes each GPU step is a pod with its own GPU: nothing to check here."""
    if executor == "k8s" or gpu_slots <= 1 or gpu_count == 0:
        return None
    if _EXPLICIT_CUDA.match(requested):
        return (
            f"gpu_slots = {gpu_slots} but [backbone] device = {requested!r}: the GPU steps "
            f'that run at once all share that one GPU (device = "cuda" gives each its own)'
        )
    if requested in ("auto", "cuda") and gpu_slots > gpu_count:
        return (
            f"gpu_slots = {gpu_slots} but this machine has {gpu_count} GPU(s): each GPU step "
            f"takes a GPU of its own, so {gpu_slots - gpu_count} step(s) wait for a free one; "
            f"set gpu_slots = {gpu_count}"
        )
    return None
