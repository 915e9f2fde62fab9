"""A task by name or specification (``get_task``, ``resolve_task``) and its three splits (``load_task``)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from syne_prune.errors import SynePruneError

from . import files
from .glue import read_hub, read_local
from .metrics import get_metric
from .splits import Split
from .task_types import get_task_type
from .tasks import TASKS, Task, TaskSpec

TaskLike = str | TaskSpec | dict
"""What the API accepts for a task: a built-in name (``TASKS``), a ``TaskSpec``, or the JSON record of a
resolved one (as ``supernet.json`` stores it)."""


@dataclass
class TaskData:
    """A task's splits: ``test`` is None when the user gave no test data (then no test metric is reported)."""

    task: Task
    train: Split
    validation: Split
    test: Split | None


def _spec(task: TaskLike) -> TaskSpec | None:
    if isinstance(task, dict):
        return TaskSpec.from_json(task)
    return task if isinstance(task, TaskSpec) else None


def get_task(task: TaskLike | Task) -> Task:
    """The ``Task`` of a built-in name or a resolved specification. Raises ``SynePruneError`` for an unknown
    name, or a specification that ``resolve_task`` has not completed."""
    if isinstance(task, Task):
        return task
    spec = _spec(task)
    if spec is None:
        if task not in TASKS:
            raise SynePruneError(f"unknown task '{task}'; choose one of {', '.join(TASKS)}")
        return TASKS[task]
    if not spec.is_resolved:
        raise SynePruneError(f"the task from {spec.train_file or spec.dataset} is not resolved; call syne_prune.data.resolve_task first")
    task_type = get_task_type(spec.task_type)
    metric = task_type.metric_function(get_metric(spec.metric, spec.task_type).function, spec.labels)
    return Task(spec.name, 1 if task_type.name == "regression" else len(spec.labels), spec.metric, metric,
                spec.text_columns, ("", None), "", label_values=spec.labels, spec=spec, task_type=task_type.name)


def check_task(task: TaskLike) -> None:
    """Cheap checks before anything is read: a known name, or a specification with exactly one source whose
    files exist. Raises ``SynePruneError``."""
    spec = _spec(task)
    if spec is None:
        get_task(task)
        return
    if (spec.train_file is None) == (spec.dataset is None):
        raise SynePruneError("give the data as either --train-file (with --validation-file, --test-file) or --dataset, not both or neither")
    if spec.dataset is not None and (spec.validation_file or spec.test_file):
        raise SynePruneError("--validation-file and --test-file go with --train-file; a --dataset has its own splits")
    for path in (spec.train_file, spec.validation_file, spec.test_file):
        if path is not None and not Path(path).is_file():
            raise SynePruneError(f"data file {path} not found; check the path")


def resolve_task(task: TaskLike | Task, model_config: Any = None) -> Task:
    """The ``Task`` of a name or a specification, a specification resolved against the data and the model
    (``files.resolve``: columns, type, metric, class names from the model's ``id2label``, every row checked)."""
    spec = _spec(task) if not isinstance(task, Task) else None
    if spec is None or spec.is_resolved:
        return get_task(task)
    check_task(spec)
    return get_task(files.resolve(spec, model_config))


def task_name(task: TaskLike | Task) -> str:
    """A task's name for people (logs, plot titles): a built-in name, or a specification's ``name`` (by default
    its data's file or folder name)."""
    spec = _spec(task) if not isinstance(task, Task) else task.spec
    if spec is None:
        return task.name if isinstance(task, Task) else str(task)
    return spec.name or files.default_name(spec)


def describe_spec(spec: TaskSpec) -> str:
    """One line on what a resolved specification reads: text and label columns, type, metric, classes, splits."""
    classes = f", {len(spec.labels)} classes ({', '.join(spec.labels[:8])}{', ...' if len(spec.labels) > 8 else ''})" if spec.labels else ""
    splits = ", ".join(split for split, _ in spec.sha256) or "train"
    return (f"text column(s) {', '.join(spec.text_columns)}, label column {spec.label_column}, {spec.task_type}, metric {spec.metric}"
            f"{classes}; splits read: {splits}")


def task_record(task: TaskLike | Task) -> str | dict[str, Any]:
    """How files record a task: a built-in task's name, or the resolved specification's JSON."""
    task = get_task(task)
    return task.name if task.spec is None else task.spec.to_json()


def same_task(first: TaskLike | Task, second: TaskLike | Task) -> bool:
    """Whether two tasks (names, specifications or their JSON records) are the same task: the same built-in name,
    or the same resolved specification (files, their sha256, columns, type, metric, class names)."""
    return json.dumps(task_record(first), sort_keys=True) == json.dumps(task_record(second), sort_keys=True)  # tuples as lists


def load_task(
    task: TaskLike | Task,
    data_dir: str | Path | None = None,
    validation_fraction: float = 0.3,
    seed: int = 0,
    max_train_examples: int | None = None,
    max_eval_examples: int | None = None,
) -> TaskData:
    """Train / validation / test splits of a task: validation is held out from train (seeded, a
    ``validation_fraction`` share) unless the task has a validation file; test is the GLUE dev split, the user's
    test file, or None when the user gave none. ``data_dir``: GLUE files of a built-in task (else the hub)."""
    task = resolve_task(task)
    if not 0 < validation_fraction < 1:
        raise SynePruneError(f"validation fraction must be in (0, 1), got {validation_fraction}")
    validation = None
    if task.spec is not None:
        splits = files.read_splits(task.spec)
        train, validation, test = splits["train"], splits.get("validation"), splits.get("test")
    elif task.generator is not None:
        train, test = task.generator(0)  # fixed data; `seed` only splits off validation
    elif data_dir is not None:
        train, test = read_local(task, Path(data_dir), task.train_file), read_local(task, Path(data_dir), task.dev_file)
    else:
        train, test = read_hub(task)
    if validation is None:
        order = np.random.RandomState(seed).permutation(len(train))
        num_validation = max(1, int(round(validation_fraction * len(train))))
        validation, train = train.take(order[:num_validation]), train.take(order[num_validation:])
    if max_train_examples is not None:
        train = train.take(np.arange(min(max_train_examples, len(train))))
    if max_eval_examples is not None:
        validation = validation.take(np.arange(min(max_eval_examples, len(validation))))
        test = None if test is None else test.take(np.arange(min(max_eval_examples, len(test))))
    return TaskData(task, train, validation, test)
