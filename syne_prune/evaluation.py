"""Score a model (or an extracted sub-network) on a split: predictions, metric and error."""
from __future__ import annotations

import contextlib
import ctypes
import sys
from collections.abc import Iterable, Iterator

import numpy as np
import torch

from syne_prune.data import Task, TaskType, get_task_type, task_name
from syne_prune.devices import default_device  # noqa: F401 - where evaluation runs; also importable from here
from syne_prune.errors import SynePruneError
from syne_prune.precision import autocast, resolve_precision


@contextlib.contextmanager
def many_shapes() -> Iterator[None]:
    """For a process that scores many sub-networks, each with weights of its own shapes (a search's pool
    worker, ``blackbox record``): inside, oneDNN is off (its primitive cache keeps kernels for every shape
    seen); on leaving, freed heap is handed back to the operating system (glibc ``malloc_trim``; nothing
    elsewhere). Measured on MiniLM/STS-B, 200 sub-networks of 400 examples each: resident memory grew 3.24 MB
    per sub-network without it, 0.0007 MB with it, median evaluation 0.431 s / 0.413 s (BENCHMARKS.md)."""
    with torch.backends.mkldnn.flags(enabled=False):
        yield
    _malloc_trim()


def _malloc_trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): its allocator keeps its own policy
        pass


@torch.inference_mode()
def predict(model: torch.nn.Module, batches: Iterable[dict], task_type: TaskType | str | bool, max_batches: int | None = None):
    """Predictions and labels over ``batches`` (the first ``max_batches`` of them when given), made from the logits as
    the task type does (``TaskType.batch_predictions``; a bool: whether the task is a regression): class ids (argmax),
    regression values, 0/1 label indicators (sigmoid > 0.5) or per-sentence tag ids of the labelled tokens. A
    non-finite model output raises ``SynePruneError`` naming the first such batch. The forward passes run on the
    model's device in the run's precision (``precision.resolve_precision``: fp32 on the CPU unless chosen otherwise);
    predictions and finiteness checks stay there until the last batch, so a GPU is not waited for batch by batch."""
    task_type = get_task_type(task_type)
    model.eval()
    device = next(model.parameters()).device
    precision = resolve_precision(None, device)
    outputs, finite = [], []
    for index, batch in enumerate(batches):
        if max_batches is not None and index >= max_batches:
            break
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        with autocast(precision, device):  # float32 logits in every precision (a no-op in fp32)
            logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits.float()
        finite.append(torch.isfinite(logits).all())
        outputs.append((task_type.batch_predictions(logits), batch["labels"]))
    if finite and not bool(torch.stack(finite).all()):  # argmax of NaN is an answer, spearman of NaN a 0: refuse both
        first = int(torch.stack(finite).logical_not().nonzero()[0]) + 1
        raise SynePruneError(f"the model's output (logits) holds NaN or inf in evaluation batch {first}; "
                             "its weights are broken: train it again in float32, with a lower --lr")
    predictions, labels = zip(*(task_type.to_numpy(*pair) for pair in outputs)) if outputs else ((), ())
    return task_type.join(list(predictions)), task_type.join(list(labels))


def evaluate(model: torch.nn.Module, batches: Iterable[dict] | None, task: Task, max_batches: int | None = None) -> dict[str, float] | None:
    """``{<task.metric_name>: metric, "error": 1 - metric}`` of ``model`` on ``batches`` (at most ``max_batches``);
    None for ``batches`` None, a split the task does not have (a user's task without test data)."""
    if batches is None:
        return None
    predictions, labels = predict(model, batches, task.type, max_batches)
    metric = task.metric(labels, predictions)
    return {task.metric_name: metric, "error": 1.0 - metric}


LEARNED_MARGIN = 0.02
"""A network whose metric is within this (absolute) of the best constant answer's has not learned its task (RTE at 3
epochs on MiniLM: test accuracy 0.527, the majority class of GLUE dev; BENCHMARKS.md)."""


def constant_answer(task: Task, labels: np.ndarray) -> dict[str, float]:
    """The best constant answer on ``labels`` (a split's labels): ``{"answer": the value answered everywhere,
    <task.metric_name>: its metric, "error": 1 - metric}``, over the task type's ``constant_answers``.
    Classification: the class that scores highest (the majority class for accuracy, the positive class for F1;
    Matthews gives 0 for any); regression: the mean score, whose correlation is 0; multi-label: no label or every
    label; token classification: one tag for every word."""
    labels = np.asarray(labels)
    scored = [(task.metric(labels, predictions), answer) for answer, predictions in task.type.constant_answers(labels, task.num_labels)]
    metric, answer = max(scored, key=lambda pair: pair[0])
    return {"answer": answer, task.metric_name: float(metric), "error": 1.0 - float(metric)}


def has_learned(scores: dict[str, float], constant: dict[str, float], margin: float = LEARNED_MARGIN) -> bool:
    """Whether ``scores`` (``evaluate``'s: its ``error``) beat the constant answer's (``constant_answer``) by more than ``margin``."""
    return scores["error"] < constant["error"] - margin


def warn_if_not_learned(metadata: dict) -> bool:
    """Print one warning line (stderr) when a checkpoint's ``supernet.json`` record says its unpruned (largest)
    network scored on validation within ``LEARNED_MARGIN`` of the best constant answer (``constant_answer``); returns
    whether it warned. Records written before ``constant_answer`` existed say nothing."""
    constant = (metadata.get("constant_answer") or {}).get("validation")
    scores = metadata["metrics"]["largest"]["validation"]
    if constant is None or has_learned(scores, constant):
        return False
    metric, answer = metadata["metric"], constant["answer"]
    answer = f"{answer:.3g}" if isinstance(answer, float) else f"label {answer}"
    print(f"warning: the unpruned network's validation {metric} is {scores[metric]:.3f}, within {LEARNED_MARGIN} of answering "
          f"{answer} everywhere ({constant[metric]:.3f}): it has not learned {task_name(metadata['task'])}, and its sub-networks' errors say "
          "nothing about pruning; train longer (--epochs) or with another --lr", file=sys.stderr, flush=True)
    return True
