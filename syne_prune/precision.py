"""The arithmetic precision of training and evaluation: a registry of precisions (``fp32``, ``bf16``, ``fp16``),
the autocast context the forward passes run in, and the gradient scaler ``fp16`` needs.

Weights, optimizer state and checkpoints stay float32 in every precision: ``bf16`` and ``fp16`` only run the
forward pass's matrix products in 16 bits (``torch.autocast``), the mixed precision of Micikevicius et al.
(arXiv 1710.03740). ``fp16`` multiplies the loss by a scale before the backward pass and divides the gradients by
it again (``torch.amp.GradScaler``), so small gradients do not flush to zero; a step whose gradients overflow is
skipped and the scale lowered. ``fp32`` is no autocast at all: the exact float32 arithmetic of a run without it.

The run's choice lives in the environment (``SYNE_PRUNE_PRECISION``), as the device's does (``devices``):
``use_precision`` sets it for a block, ``resolve_precision`` turns ``auto`` into ``bf16`` on a GPU that supports
it and ``fp32`` elsewhere. A training step calls ``backward(loss)`` instead of ``loss.backward()``: inside
``scaling(scaler)`` (the training loop's) that is the scaled backward pass.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from syne_prune.devices import default_device, scoped_environment
from syne_prune.errors import SynePruneError

PRECISION_ENV = "SYNE_PRUNE_PRECISION"
AUTO = "auto"


@dataclass(frozen=True)
class Precision:
    """One precision: its name, the dtype autocast computes in (None: no autocast) and whether its backward pass
    needs a gradient scaler (a 5-bit exponent: fp16)."""

    name: str
    autocast_dtype: torch.dtype | None
    needs_scaler: bool
    description: str


PRECISIONS: dict[str, Precision] = {p.name: p for p in (
    Precision("fp32", None, False, "float32 throughout"),
    Precision("bf16", torch.bfloat16, False, "bfloat16 autocast, float32 weights"),
    Precision("fp16", torch.float16, True, "float16 autocast with a gradient scaler, float32 weights"),
)}
PRECISION_CHOICES = (AUTO, *PRECISIONS)


def get_precision(name: str) -> Precision:
    """The registered precision ``name``; raises ``SynePruneError`` (one line) for an unknown one."""
    if name not in PRECISIONS:
        raise SynePruneError(f"unknown --precision '{name}'; choose one of {', '.join(PRECISION_CHOICES)}")
    return PRECISIONS[name]


def resolve_precision(name: str | None, device: torch.device) -> str:
    """The precision a run on ``device`` uses: ``name`` (None: the run's choice, ``SYNE_PRUNE_PRECISION``, else
    ``auto``), where ``auto`` is ``bf16`` on a GPU that computes in it natively (``native_bf16``) and ``fp32`` on the
    CPU and older GPUs.
    Raises ``SynePruneError`` for an unknown name and for ``bf16`` on a GPU without bfloat16."""
    name = (name if name is not None else os.environ.get(PRECISION_ENV) or AUTO).strip().lower()
    if name == AUTO:
        return "bf16" if device.type == "cuda" and native_bf16(device) else "fp32"
    get_precision(name)
    if name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported(including_emulation=True):
        raise SynePruneError(f"--precision bf16: {torch.cuda.get_device_name(device)} does not support bfloat16; use fp16 or fp32")
    return name


def run_compute() -> dict[str, str]:
    """What this process computes in now: ``{"precision": name, "device": "cpu" | "cuda"}`` (the run's ``--precision``
    and ``--device`` resolved), as search.json, a blackbox's header and the training records keep it."""
    device = default_device()
    return {"precision": resolve_precision(None, device), "device": device.type}


def native_bf16(device: torch.device) -> bool:
    """Whether the GPU ``device`` computes in bfloat16 natively (compute capability 8.0 and later: A100, A10G, L4,
    H100, H200; ROCm GPUs); older ones only emulate it, slowly."""
    return bool(torch.version.hip) or torch.cuda.get_device_properties(device).major >= 8


@contextlib.contextmanager
def use_precision(name: str | None = AUTO) -> Iterator[None]:
    """Run a block in precision ``name`` (checked on entry): ``resolve_precision(None, ...)`` inside, and every
    process started inside, picks it. None or ``auto`` keeps the enclosing choice."""
    if name is None or name == AUTO:
        yield
        return
    get_precision(name)
    with scoped_environment({PRECISION_ENV: name}):
        yield


def autocast(name: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The context the forward passes of precision ``name`` run in on ``device``: ``torch.autocast`` with its dtype,
    or nothing at all for ``fp32`` (bit for bit the arithmetic of code without it)."""
    dtype = get_precision(name).autocast_dtype
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def make_scaler(name: str, device: torch.device) -> torch.amp.GradScaler | None:
    """A gradient scaler for precision ``name`` on ``device`` (``torch.amp.GradScaler``), or None where it needs none."""
    return torch.amp.GradScaler(device.type) if get_precision(name).needs_scaler else None


_SCALER: contextvars.ContextVar[torch.amp.GradScaler | None] = contextvars.ContextVar("syne_prune_scaler", default=None)


@contextlib.contextmanager
def scaling(scaler: torch.amp.GradScaler | None) -> Iterator[None]:
    """Inside, ``backward`` scales the loss with ``scaler`` (None: plain backward passes)."""
    token = _SCALER.set(scaler)
    try:
        yield
    finally:
        _SCALER.reset(token)


def backward(loss: torch.Tensor) -> None:
    """The backward pass of ``loss`` (a scalar tensor): ``loss.backward()``, on the scaled loss inside ``scaling``
    with a scaler (fp16). Gradients accumulate as with ``loss.backward()``."""
    scaler = _SCALER.get()
    (loss if scaler is None else scaler.scale(loss)).backward()
