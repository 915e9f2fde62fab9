"""A user's task on another machine: the data files of a resolved ``TaskSpec`` under names that do not depend on
where they lie (``spec_files``), and the specification pointed at a folder holding them under those names
(``relocate``), e.g. the input channel of a SageMaker job. The relocated specification keeps the recorded sha256,
so reading it checks that the copies are the files the task was resolved from (``files.check_unchanged``)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from .files import check_unchanged
from .tasks import TaskSpec

_SPLIT_FILES = {"train": "train_file", "validation": "validation_file", "test": "test_file"}
DATASET_FOLDER = "dataset"  # a saved DatasetDict travels as this folder


def _as_spec(task: TaskSpec | dict[str, Any]) -> TaskSpec:
    return task if isinstance(task, TaskSpec) else TaskSpec.from_json(task)


def spec_files(task: TaskSpec | dict[str, Any] | str) -> dict[str, Path]:
    """``{name: local path}`` of every data file a specification (or its JSON record) reads: ``train.csv``,
    ``validation.jsonl``, ``test.csv`` (split and suffix), or ``dataset/...`` for the files of a saved dataset.
    Empty for a built-in task's name and for a hub dataset id (nothing local to carry)."""
    if isinstance(task, str):
        return {}
    spec = _as_spec(task)
    if spec.dataset is not None:
        root = Path(spec.dataset)
        if not root.is_dir():
            return {}
        return {f"{DATASET_FOLDER}/{p.relative_to(root).as_posix()}": p for p in sorted(root.rglob("*")) if p.is_file()}
    return {f"{split}{Path(path).suffix}": Path(path) for split, field in _SPLIT_FILES.items() if (path := getattr(spec, field)) is not None}


def relocate(task: TaskSpec | dict[str, Any], folder: str | Path) -> TaskSpec:
    """The specification reading its files from ``folder`` (where ``spec_files``' names were copied), with its
    recorded sha256 kept. Raises ``SynePruneError`` (one line, naming the file and both digests) when a copy differs
    from the file the task was resolved from, or is missing."""
    spec, folder = _as_spec(task), Path(folder)
    if spec.dataset is not None:
        moved = replace(spec, dataset=str(folder / DATASET_FOLDER)) if spec.sha256 else spec  # a hub id stays as it is
    else:
        moved = replace(spec, **{field: str(folder / f"{split}{Path(path).suffix}")
                                 for split, field in _SPLIT_FILES.items() if (path := getattr(spec, field)) is not None})
    check_unchanged(moved)
    return moved
