"""The one training loop: super-network training, standard-NAS trials and recovery all run it.

A *step* is one callable, ``(model, batch, step) -> loss``: it runs the forward and backward passes of
one batch (gradients accumulate; the loop steps AdamW and the linear schedule) and returns the loss as
a float or a detached scalar tensor. The super-network strategies (``supernet/strategies.py``) have this shape;
``label_loss_step`` is plain fine-tuning on the labels. A step calls ``precision.backward(loss)``, not
``loss.backward()``: the loop runs it inside the precision's autocast and, for fp16, its gradient scaler
(``syne_prune.precision``; weights and optimizer state stay float32).

On a GPU the loop does not wait for the device on every step: a step's tensor loss is added up on the device and
read (and checked for NaN) every ``LOG_EVERY`` steps and at the epoch's end; batches are copied from pinned memory
without blocking. On the CPU every loss is read at once, as a float.

After every epoch the caller's ``on_epoch_end`` evaluates, saves and reports in its own order; the
resume state it saves with ``TrainingLoop.save`` is the same for everyone (one file, replaced
atomically): weights, optimizer, schedule, the Python/NumPy/torch/CUDA random generators, the
strategy's generator (if any), epochs done and the history. A non-finite loss or weight stops training
with a one-line ``SynePruneError`` before anything of that epoch is saved.
"""
from __future__ import annotations

import json
import os
import random
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from syne_prune.data import data_loader, group_by_length
from syne_prune.devices import default_device
from syne_prune.errors import SynePruneError
from syne_prune.files import atomic_write_text, new_output, writing
from syne_prune.numerics import non_finite_tensors, require_finite
from syne_prune.precision import autocast, backward, make_scaler, resolve_precision, scaling

STATE_FORMAT = 1
RESUME_DIR = ".resume"
SETTINGS_FILE = "settings.json"
Step = Callable[[torch.nn.Module, Mapping[str, torch.Tensor], int], "float | torch.Tensor"]
LOG_EVERY = 50  # on a GPU: steps between reads of the running loss (progress bar, NaN check)
# The default learning rate of every fine-tuning that teaches a model its task: super-network training, a standard-NAS
# trial, a baseline's fine-tuning after pruning. Measured on all-MiniLM-L6-v2 (BENCHMARKS.md, quality and "Standard NAS
# in the tables"): the better of the reference grid {8e-5, 1.5e-4} on STS-B, the second on MRPC; at 2e-5 three epochs
# of MRPC left the full model at validation error 0.193, no better than the constant answer. Recovery has its own.
FINETUNE_LR = 8e-5


@dataclass(frozen=True)
class LoopSettings:
    """How the loop trains: ``epochs`` passes over the examples in batches of ``batch_size`` (shuffled with
    ``seed + epoch``), AdamW (``lr``, ``weight_decay``) with a linear schedule that warms up over the first
    ``warmup_ratio`` of all steps and decays to 0."""

    epochs: int
    lr: float
    batch_size: int
    seed: int = 0
    warmup_ratio: float = 0.0
    weight_decay: float = 0.01
    description: str = "train"  # shown in the progress bar
    progress: bool = True


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    """Optimizer steps in one epoch (the last batch may be smaller)."""
    return -(-num_examples // batch_size)


def label_loss_step(model: torch.nn.Module, batch: Mapping[str, torch.Tensor], step: int) -> torch.Tensor:
    """Plain fine-tuning: the model's own loss on the labels (cross-entropy, or MSE for regression), detached."""
    loss = model(**batch).loss
    backward(loss)
    return loss.detach()


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (torch seeds every CUDA device too)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class TrainingLoop:
    """Train ``model`` on tokenized ``examples`` (see ``data.encode``) with ``step``; see the module docstring.

    ``random_state``: the step's own generator (a strategy's sampling of sub-networks), saved and restored
    with the others. The model is moved to ``device`` (default: the run's, ``devices.default_device``) and trained
    in ``precision`` (a name of ``precision.PRECISIONS`` or ``auto``; default: the run's, see
    ``precision.resolve_precision``); both are kept in the resume state, and resuming in another precision is a
    ``SynePruneError``.
    """

    def __init__(self, model: torch.nn.Module, examples: list[dict], tokenizer: Any, step: Step, settings: LoopSettings,
                 random_state: np.random.RandomState | None = None, device: torch.device | None = None,
                 precision: str | None = None) -> None:
        if not 0 <= settings.warmup_ratio < 1:
            raise SynePruneError(f"--warmup-ratio must be in [0, 1), got {settings.warmup_ratio}")
        self.device = device if device is not None else default_device()
        self.precision = resolve_precision(precision, self.device)
        self.scaler = make_scaler(self.precision, self.device)
        self.model = model.to(self.device)
        self.examples, self.tokenizer, self.step, self.settings = examples, tokenizer, step, settings
        self.random_state = random_state
        self.steps_per_epoch = steps_per_epoch(len(examples), settings.batch_size)
        total = self.steps_per_epoch * settings.epochs
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
        self.schedule = get_linear_schedule_with_warmup(self.optimizer, round(settings.warmup_ratio * total), total)
        self.epochs_done = 0
        self.history: list[dict[str, Any]] = []
        self.extra: dict[str, Any] = {}

    def run(self, on_epoch_end: Callable[[dict[str, Any]], bool | None] | None = None) -> list[dict[str, Any]]:
        """Train from ``epochs_done`` to ``settings.epochs``; after each epoch append its record (``epoch``,
        ``train_loss``: mean loss per step, ``epoch_time_s``) to ``history`` and call ``on_epoch_end(record)``
        (which may add metrics to the record and save; a true return value stops training after this epoch, as early
        stopping does). Returns the history."""
        settings = self.settings
        for epoch in range(self.epochs_done, settings.epochs):
            self.model.train()
            loader = data_loader(self.examples, self.tokenizer, settings.batch_size, shuffle=True, seed=settings.seed + epoch,
                                 pin_memory=self.device.type == "cuda", group_by_length=group_by_length())
            bar = tqdm(loader, total=self.steps_per_epoch, desc=f"epoch {epoch + 1}/{settings.epochs} [{settings.description}]",
                       disable=not settings.progress)
            epoch_start, seen, losses = time.time(), 0, _LossTotal(epoch + 1, self.steps_per_epoch, _stopped_fix(settings.lr, self.precision))
            for index, batch in enumerate(bar):
                batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
                with autocast(self.precision, self.device), scaling(self.scaler):
                    loss = self.step(self.model, batch, epoch * self.steps_per_epoch + index)
                losses.add(loss, on_device=self.device.type != "cpu")
                self._optimizer_step()
                seen += len(batch["labels"])
                if losses.readable or (index + 1) % LOG_EVERY == 0:
                    bar.set_postfix(loss=f"{losses.read() / (index + 1):.4f}", examples_per_s=f"{seen / (time.time() - epoch_start):.1f}")
            loss_sum = losses.read()
            bad, _ = non_finite_tensors(self.model.named_parameters())
            if bad:
                raise SynePruneError(f"weights became non-finite in epoch {epoch + 1} ({', '.join(bad[:3])}); "
                                     f"{_stopped_fix(settings.lr, self.precision)}")
            record = {"epoch": epoch + 1, "train_loss": loss_sum / max(1, self.steps_per_epoch), "epoch_time_s": time.time() - epoch_start}
            self.history.append(record)
            self.epochs_done = epoch + 1
            if on_epoch_end is not None and on_epoch_end(record):
                break
        return self.history

    def _optimizer_step(self) -> None:
        """AdamW (through the gradient scaler for fp16: a step with overflowing gradients is skipped), the schedule,
        and the gradients cleared."""
        if self.scaler is None:
            self.optimizer.step()
        else:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        self.schedule.step()
        self.optimizer.zero_grad(set_to_none=True)

    def save(self, path: str | Path, **extra: Any) -> None:
        """Write the resume state to ``path`` (one file, atomically replaced); ``extra``: more values to keep."""
        self.extra = {**self.extra, **extra}
        save_training_state(path, self.model, self.optimizer, self.schedule, self.epochs_done, self.history,
                            self.random_state, self.extra, compute=self.compute_record())

    def compute_record(self) -> dict[str, Any]:
        """What the loop trains on and in: ``{"precision": name, "device": "cpu" | "cuda", "scaler": its state or
        None}`` (kept in the resume state; ``check_compute`` compares it on resume)."""
        return {"precision": self.precision, "device": self.device.type,
                "scaler": None if self.scaler is None else self.scaler.state_dict()}

    def resume(self, path: str | Path) -> bool:
        """Restore the state saved at ``path`` when there is one; returns whether it was there. Raises
        ``SynePruneError`` when it was trained in another precision (``check_compute``)."""
        if not Path(path).is_file():
            return False
        state = load_training_state(path, self.model, self.optimizer, self.schedule, self.random_state)
        compute = check_compute(state, self.precision, self.device)
        if self.scaler is not None and compute.get("scaler"):
            self.scaler.load_state_dict(compute["scaler"])
        self.epochs_done, self.history, self.extra = state["epochs_done"], state["history"], state["extra"]
        return True


class _LossTotal:
    """The sum of one epoch's step losses, in float64. A float loss, or any loss with ``on_device`` False, is read
    and checked at once (in step order, as plain Python floats); a tensor loss on a GPU is added up there and read
    (one synchronisation) by ``read``, which checks the steps since the last read."""

    def __init__(self, epoch: int, steps: int, fix: str) -> None:
        self.epoch, self.steps, self.fix = epoch, steps, fix
        self.total, self.pending, self.added, self.checked = 0.0, None, 0, 0

    @property
    def readable(self) -> bool:
        """Whether ``read`` costs no device synchronisation."""
        return self.pending is None

    def add(self, loss: float | torch.Tensor, on_device: bool) -> None:
        self.added += 1
        if isinstance(loss, torch.Tensor) and on_device:
            loss = loss.detach().to(torch.float64)
            self.pending = loss if self.pending is None else self.pending + loss
            return
        self.read()
        self.total += require_finite(loss, f"training loss (epoch {self.epoch}, step {self.added} of {self.steps})", self.fix)
        self.checked = self.added

    def read(self) -> float:
        """The sum so far (a float); raises ``SynePruneError`` when the steps since the last read hold NaN or inf."""
        if self.pending is not None:
            first, self.checked = self.checked + 1, self.added
            steps = f"step {first}" if first == self.added else f"steps {first}-{self.added}"
            self.total += require_finite(self.pending, f"training loss (epoch {self.epoch}, {steps} of {self.steps})", self.fix)
            self.pending = None
        return self.total


def rng_states() -> dict[str, Any]:
    """The global random generators: python, numpy, torch (CPU) and CUDA (None without a GPU)."""
    return {"python_rng": random.getstate(), "numpy_rng": np.random.get_state(), "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def restore_rng_states(state: Mapping[str, Any]) -> None:
    random.setstate(state["python_rng"])
    np.random.set_state(state["numpy_rng"])
    torch.set_rng_state(state["torch_rng"].cpu())
    if torch.cuda.is_available() and state.get("cuda_rng") is not None:
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])


def save_training_state(path: str | Path, model: torch.nn.Module, optimizer, schedule, epochs_done: int, history: list[dict],
                        random_state: np.random.RandomState | None = None, extra: dict[str, Any] | None = None,
                        compute: dict[str, Any] | None = None) -> None:
    """The resume state after ``epochs_done`` epochs, written to a temporary file and then renamed over ``path``,
    with ``compute`` (``TrainingLoop.compute_record``: precision, device, scaler; None: float32 on its device)
    so a kill at any moment leaves either the previous state or this one.
    A failed write (full disk, ...) removes the temporary file and is a one-line ``SynePruneError`` naming ``path``
    (``files.writing``); the previous state stays."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with writing(path, cleanup=[tmp]):
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"format": STATE_FORMAT, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "schedule": schedule.state_dict(), **rng_states(),
                    "strategy_rng": random_state.get_state() if random_state is not None else None,
                    "epochs_done": epochs_done, "history": history, "extra": extra or {}, "compute": compute}, tmp)
        os.replace(tmp, path)


def load_training_state(path: str | Path, model: torch.nn.Module, optimizer, schedule,
                        random_state: np.random.RandomState | None = None) -> dict[str, Any]:
    """Restore what ``save_training_state`` wrote into ``model``, ``optimizer``, ``schedule``, the global
    generators and ``random_state``; returns the state (``epochs_done``, ``history``, ``extra``)."""
    state = torch.load(path, weights_only=False, map_location="cpu")
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise SynePruneError(f"resume state {path} was written by another syne-prune version; start again without resuming (--overwrite)")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    if random_state is not None and state["strategy_rng"] is not None:
        random_state.set_state(state["strategy_rng"])
    restore_rng_states(state)
    return state


def check_compute(state: Mapping[str, Any], precision: str, device: torch.device | str, did: str = "trained") -> dict[str, Any]:
    """The ``compute`` record of a resume ``state`` (``save_training_state``; a state without one was trained in
    fp32), checked against the run that resumes it (``device``: a device or its kind, e.g. ``"cuda"``; ``did``: what
    the interrupted run did, for the messages): another precision is a one-line ``SynePruneError`` (a model
    half-trained in bf16 is not continued in fp32 unasked); another kind of device is allowed, and said in one line
    on stderr (weights and optimizer state are float32 and move with the model)."""
    compute = dict(state.get("compute") or {"precision": "fp32"})
    kind = getattr(device, "type", device)
    if compute["precision"] != precision:
        raise SynePruneError(f"--resume in precision {precision}, but the interrupted run {did} in {compute['precision']}; "
                             f"resume with --precision {compute['precision']}, or start again (--overwrite)")
    if compute.get("device") not in (None, kind):
        print(f"note: resuming on {kind}; the interrupted run {did} on {compute['device']} (float32 weights move with the model)",
              file=sys.stderr, flush=True)
    return compute


def prepare_output(output: str | Path, settings: Mapping[str, Any], resume: bool, overwrite: bool, done_file: str,
                   check_only: bool = False) -> Path:
    """Make ``output`` ready for a run that keeps its resume state in ``output/.resume``; returns it.

    ``done_file``: the file a finished run writes last (a finished output is returned as it is on ``resume``).
    ``settings``: what must match for ``resume`` to continue the run (kept in ``.resume/settings.json``).
    ``check_only``: refuse what would be refused, create and empty nothing (then take ``files.output_lock`` and
    call again). ``overwrite`` empties the directory but for its lock file. Raises SynePruneError for an existing
    output without ``resume``/``overwrite``, nothing to resume, or other settings than the interrupted run's;
    nothing is touched then.
    """
    output = Path(output)
    state = output / RESUME_DIR / "state.pt"
    if resume and overwrite:
        raise SynePruneError("--resume and --overwrite exclude each other; pick one")
    if resume:
        if (output / done_file).is_file() and not state.exists():
            return output
        if not state.is_file():
            raise SynePruneError(f"nothing to resume in '{output}' (no finished epoch saved); drop --resume to start anew")
        saved = json.loads((output / RESUME_DIR / SETTINGS_FILE).read_text())
        wanted = json.loads(json.dumps(dict(settings)))
        if saved != wanted:
            changed = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
            raise SynePruneError(f"--resume with other settings than the interrupted run ({', '.join(changed)}); use the same ones")
        return output
    new_output(output, overwrite, check_only)
    return output


def read_settings(output: str | Path) -> dict[str, Any] | None:
    """The settings ``write_settings`` kept in ``output/.resume/settings.json``; None when there are none."""
    path = Path(output) / RESUME_DIR / SETTINGS_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def write_settings(output: str | Path, settings: Mapping[str, Any]) -> None:
    """Keep the settings a resume must match in ``output/.resume/settings.json`` (atomically)."""
    path = Path(output) / RESUME_DIR / SETTINGS_FILE
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(dict(settings), indent=2))


def _stopped_fix(lr: float, precision: str = "fp32") -> str:
    arithmetic = "syne-prune trains in float32" if precision == "fp32" else f"this run trains in {precision} autocast; try --precision fp32"
    return (f"training stopped, nothing of this epoch saved; lower --lr (now {lr:g}), or check the data and the model's "
            f"weights for extreme values ({arithmetic})")
