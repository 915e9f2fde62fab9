"""Where training and evaluation run: the one place that turns ``--device`` into a ``torch.device`` and decides
which GPU each search worker gets.

The run's choice lives in the environment (``SYNE_PRUNE_DEVICE``), so the processes a run starts (pool workers,
Syne Tune trial processes) inherit it; ``use_device`` sets it for a block (the command line wraps every command in
it), ``default_device`` reads it. ``auto`` (the default) is the GPU when torch sees one, else the CPU.

A search on a GPU machine gives each worker process one GPU through ``CUDA_VISIBLE_DEVICES`` in its environment:
``gpu_assignment`` and ``worker_environment`` are the pure rule (worker ``i`` gets visible GPU ``i mod G``).
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence

import torch

from syne_prune.errors import SynePruneError

DEVICE_ENV = "SYNE_PRUNE_DEVICE"
DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N")  # for help texts; cuda:N is any visible GPU's index
VISIBLE_ENV = "CUDA_VISIBLE_DEVICES"


def resolve_device(spec: str | None = None) -> torch.device:
    """``spec`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``; None: the run's choice, ``SYNE_PRUNE_DEVICE``, else auto)
    as a ``torch.device``. Raises ``SynePruneError`` (one line) for an unknown name, for ``cuda`` where torch sees no
    GPU and for a GPU index torch does not see."""
    spec = (spec if spec is not None else os.environ.get(DEVICE_ENV) or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    kind, _, index = spec.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise SynePruneError(f"unknown --device '{spec}'; choose one of {', '.join(DEVICE_CHOICES)}")
    if not torch.cuda.is_available():
        raise SynePruneError(f"--device {spec}: torch sees no GPU (torch {torch.__version__}, CUDA build: "
                             f"{torch.version.cuda or 'no'}); use --device cpu, or install a CUDA build of torch")
    if index and int(index) >= torch.cuda.device_count():
        raise SynePruneError(f"--device {spec}: torch sees {torch.cuda.device_count()} GPU(s) (cuda:0 to "
                             f"cuda:{torch.cuda.device_count() - 1}); pick one of them")
    return torch.device(spec)


def default_device() -> torch.device:
    """Where training and evaluation run now: the run's ``--device`` (``use_device``), else the GPU when torch sees
    one (e.g. a SageMaker GPU instance), else the CPU."""
    return resolve_device(None)


@contextlib.contextmanager
def scoped_environment(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set (a value) or remove (None) environment variables for a block, then restore them."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            _set_env(name, value)
        yield
    finally:
        for name, value in saved.items():
            _set_env(name, value)


def _set_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


@contextlib.contextmanager
def use_device(spec: str | None = "auto") -> Iterator[torch.device]:
    """Run a block on ``spec`` (see ``resolve_device``; checked on entry): ``default_device`` inside, and every process
    started inside, picks it. Yields the device. None or ``auto`` keeps the enclosing choice."""
    if spec is None or spec == "auto":
        yield resolve_device(None)
        return
    device = resolve_device(spec)
    with scoped_environment({DEVICE_ENV: str(device)}):
        yield device


def visible_gpus(environ: Mapping[str, str] | None = None, count: int | None = None) -> list[str]:
    """The GPUs a process may use, as ``CUDA_VISIBLE_DEVICES`` names them: the entries of that variable in
    ``environ`` (default: this process's) when set, else ``"0"`` .. ``str(count - 1)`` (``count`` default: torch's
    device count; 0 without a GPU)."""
    environ = os.environ if environ is None else environ
    if environ.get(VISIBLE_ENV, "").strip():
        return [name.strip() for name in environ[VISIBLE_ENV].split(",") if name.strip()]
    count = (torch.cuda.device_count() if torch.cuda.is_available() else 0) if count is None else count
    return [str(index) for index in range(count)]


def worker_gpus(device: torch.device, environ: Mapping[str, str] | None = None, count: int | None = None) -> list[str]:
    """The GPUs a run on ``device`` spreads its workers over, as ``CUDA_VISIBLE_DEVICES`` names them: none on the
    CPU, the one GPU of ``cuda:N``, every visible GPU (``visible_gpus(environ, count)``) for ``cuda``."""
    if device.type != "cuda":
        return []
    visible = visible_gpus(environ, count)
    return visible if device.index is None else [visible[device.index]]


def default_workers(num_gpus: int, workers_per_gpu: int, cpu_default: int) -> int:
    """How many search workers a machine runs by default: ``workers_per_gpu`` per GPU when it has GPUs, else
    ``cpu_default``. Raises ``SynePruneError`` for ``workers_per_gpu`` < 1."""
    if workers_per_gpu < 1:
        raise SynePruneError(f"--workers-per-gpu must be at least 1, got {workers_per_gpu}")
    return num_gpus * workers_per_gpu if num_gpus > 0 else cpu_default


def gpu_assignment(num_workers: int, gpus: Sequence[str]) -> list[str | None]:
    """The GPU each of ``num_workers`` workers runs on: worker ``i`` gets ``gpus[i % len(gpus)]`` (names as in
    ``CUDA_VISIBLE_DEVICES``), so the workers spread evenly and the first ones never share while a GPU is free;
    every worker gets None (the CPU) when ``gpus`` is empty."""
    if not gpus:
        return [None] * num_workers
    return [gpus[index % len(gpus)] for index in range(num_workers)]


def worker_environment(gpu: str | None, device: torch.device) -> dict[str, str]:
    """The environment variables a worker process gets on top of its parent's: on a GPU, ``CUDA_VISIBLE_DEVICES``
    is that one GPU and ``SYNE_PRUNE_DEVICE`` is ``cuda`` (the only GPU it sees); on the CPU (``gpu`` None, or the
    run's ``device`` is the CPU) ``SYNE_PRUNE_DEVICE`` is ``cpu`` and the rest is inherited."""
    if gpu is None or device.type != "cuda":
        return {DEVICE_ENV: "cpu"}
    return {VISIBLE_ENV: gpu, DEVICE_ENV: "cuda"}
