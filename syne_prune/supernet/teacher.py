"""A fixed, fine-tuned teacher for super-network training (``train-supernet --teacher DIR|auto``).

The teacher is a fine-tuned model of the same architecture, vocabulary and task head as the model being
trained. It is loaded once, kept in eval mode and never updated; its logits for each batch, computed
without gradients, are the soft targets every sub-network learns from next to the labels (knowledge
distillation, Hinton et al. 2015; a fixed fine-tuned teacher as in DynaBERT, Hou et al. 2020).

``--teacher auto`` first fine-tunes the full model with the ``standard`` strategy (same data and epochs), once per
learning rate of ``--teacher-learning-rates`` with a linear warm-up over ``--teacher-warmup-ratio`` of the steps, into
``OUTPUT/teacher/lr-<lr>`` (``TEACHER_DIR``, ``grid_directory``), and keeps the fine-tune with the lowest validation
error (``grid_record``: every run's validation and test metrics and seconds, recorded in ``supernet.json``); with
``--teacher-learning-rates none`` it fine-tunes once, with the super-network's learning rate and warm-up, into
``OUTPUT/teacher``. ``--resume`` reuses or continues each fine-tune (see ``train.py``). No fine-tune runs when the model
already is a classifier for exactly the task's classes (``is_trained_for``: the user's own fine-tuned model), which is
then the teacher as it is.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers import AutoConfig, PretrainedConfig, PreTrainedModel

from syne_prune.errors import SynePruneError
from syne_prune.models import auto_class_of, check_model_files, load_tokenizer

if TYPE_CHECKING:
    from syne_prune.data import Task

AUTO = "auto"
NONE = "none"  # --teacher none: kd and full distil in place from the network being trained
TEACHER_DIR = "teacher"  # where --teacher auto writes the fine-tuned teacher, inside --output
FIX = "give a model fine-tuned on this task with the same base model (e.g. a train-supernet --strategy standard checkpoint) or --teacher auto"


class Teacher:
    """A frozen model: ``teacher(batch) -> logits`` ([batch, num_labels], or [batch, num_choices] for multiple
    choice), computed in eval mode without gradients; ``labels`` in the batch are ignored."""

    def __init__(self, model: PreTrainedModel, path: str | Path, source: str | None = None) -> None:
        self.model = model.eval().requires_grad_(False)
        self.path = str(path)
        self.source = source or self.path  # what --teacher said: the directory or 'auto'
        self.fine_tune: dict[str, Any] | None = None  # --teacher auto's grid (grid_record), recorded in supernet.json

    def to(self, device: str | torch.device) -> Teacher:
        self.model.to(device)
        return self

    @torch.no_grad()
    def __call__(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        self.model.eval()
        return self.model(**{k: v for k, v in batch.items() if k != "labels"}).logits


def grid_directory(lr: float) -> str:
    """The directory, inside ``OUTPUT/teacher``, of the teacher fine-tuned at learning rate ``lr``."""
    return f"lr-{lr:g}"


def grid_record(runs: list[tuple[float, Path, dict[str, Any]]], warmup_ratio: float) -> dict[str, Any]:
    """The record of ``--teacher auto``'s grid from ``runs`` ((lr, directory, its ``supernet.json``), in grid order):
    ``learning_rates``, ``warmup_ratio``, ``runs`` (per run: ``lr``, ``path``, ``validation`` and ``test`` metrics of
    the fine-tuned model, ``train_time_s``), ``train_time_s`` (all runs, seconds), and the chosen run's ``lr`` and
    ``path``: the lowest validation error, the first in grid order among equals; a non-finite error is never chosen
    over a finite one."""
    rows = [{"lr": lr, "path": str(directory), "validation": record["metrics"]["largest"]["validation"],
             "test": record["metrics"]["largest"]["test"], "train_time_s": record["train_time_s"]} for lr, directory, record in runs]

    def error(index: int) -> tuple[float, int]:
        value = rows[index]["validation"]["error"]
        return (value if math.isfinite(value) else math.inf, index)

    chosen = rows[min(range(len(rows)), key=error)]
    return {"learning_rates": [row["lr"] for row in rows], "warmup_ratio": warmup_ratio, "lr": chosen["lr"], "path": chosen["path"],
            "metric": runs[0][2]["metric"], "runs": rows, "train_time_s": sum(row["train_time_s"] for row in rows)}


def print_grid(grid: dict[str, Any]) -> None:
    """One line per fine-tune of the grid (validation and test metric, seconds) and the one chosen."""
    metric = grid["metric"]
    for row in grid["runs"]:
        test = "no test data" if row["test"] is None else f"test {metric} {row['test'][metric]:.4f}"
        print(f"teacher at lr {row['lr']:g} (warm-up {grid['warmup_ratio']:.0%}): validation {metric} {row['validation'][metric]:.4f}, "
              f"{test}, {row['train_time_s']:.0f} s", flush=True)
    print(f"teacher: lr {grid['lr']:g}, the best on validation; the grid's {len(grid['runs'])} fine-tunes took {grid['train_time_s']:.0f} s",
          flush=True)


def task_kind(task: Task) -> str:
    """'multiple choice', 'regression' or 'classification'."""
    return "multiple choice" if task.is_multiple_choice else "regression" if task.is_regression else "classification"


def head_kind(config: PretrainedConfig) -> str:
    """What a checkpoint's task head predicts: 'multiple choice', 'regression', 'classification' or 'none (a base model)'."""
    auto_name = auto_class_of(config).__name__
    if auto_name == "AutoModelForMultipleChoice":
        return "multiple choice"
    if auto_name == "AutoModelForSequenceClassification":
        return "regression" if config.num_labels == 1 or config.problem_type == "regression" else "classification"
    return "none (a base model)"


def is_trained_for(config: PretrainedConfig, task: Task) -> bool:
    """Whether a checkpoint already carries a trained head for exactly ``task``'s classes: a sequence classifier
    whose own class names (``id2label``, not transformers' ``LABEL_i`` placeholders) are the task's, in the same
    order. Only a user's task with class names can tell (``TaskSpec``); a built-in task or a regression never does."""
    if task.spec is None or task.is_regression or head_kind(config) != "classification":
        return False
    names = tuple(str(config.id2label[i]) for i in range(config.num_labels)) if config.id2label else ()
    return names == tuple(task.label_values)


def check_teacher(path: str, model_config: PretrainedConfig, tokenizer: Any, task: Task, output: str | None = None) -> PretrainedConfig:
    """Check that the teacher in directory ``path`` fits the model and task; returns its config.

    Raises a one-line SynePruneError naming both values when the teacher is missing or unloadable, inside
    ``output`` (the training output directory, which --overwrite replaces; None: not checked), or has another
    architecture (model_type), vocabulary (vocab_size or tokenizer vocabulary), task head (regression / classification / multiple choice) or label count.
    """
    directory = Path(path)
    if not directory.is_dir():
        raise SynePruneError(f"teacher '{path}' not found; {FIX}")
    if output is not None and directory.resolve().is_relative_to(Path(output).resolve()):
        raise SynePruneError(f"teacher '{path}' lies inside --output '{output}', which training replaces; copy it elsewhere or use --teacher auto")
    try:
        config = AutoConfig.from_pretrained(directory)
    except (OSError, ValueError) as error:
        raise SynePruneError(f"cannot load teacher '{path}' ({str(error).strip().splitlines()[0]}); {FIX}") from None
    for name, teacher_value, model_value in (("model_type", config.model_type, model_config.model_type),
                                             ("vocab_size", getattr(config, "vocab_size", None), model_config.vocab_size)):
        if teacher_value != model_value:
            raise SynePruneError(f"teacher '{path}' has {name} {teacher_value}, --model has {model_value}; {FIX}")
    kind, wanted = head_kind(config), task_kind(task)
    if kind != wanted:
        raise SynePruneError(f"teacher '{path}' has task head '{kind}', task '{task.name}' needs '{wanted}'; {FIX}")
    if kind == "classification" and config.num_labels != task.num_labels:
        raise SynePruneError(f"teacher '{path}' predicts {config.num_labels} labels, task '{task.name}' has {task.num_labels}; {FIX}")
    _check_tokenizer(directory, tokenizer)
    return config


def _check_tokenizer(directory: Path, tokenizer: Any) -> None:
    """A teacher saved with a tokenizer must map tokens to the same ids as the model's tokenizer."""
    if not any((directory / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json")):
        return  # no tokenizer of its own: it reads the model's token ids, whose count vocab_size matched
    own = load_tokenizer(str(directory), f"teacher '{directory}'").get_vocab()
    theirs = tokenizer.get_vocab()
    if own != theirs:
        differ = sum(own.get(token) != index for token, index in theirs.items())
        raise SynePruneError(f"teacher '{directory}' has a tokenizer vocabulary of {len(own)} tokens, --model one of {len(theirs)} "
                             f"({differ} token ids differ); {FIX}")


def load_teacher(path: str | Path, model_config: PretrainedConfig, tokenizer: Any, task: Task, output: str | None = None,
                 source: str | None = None) -> Teacher:
    """Check (``check_teacher``) and load the teacher in ``path``, frozen, on the CPU; ``source`` (default
    ``path``) is what the metadata records, e.g. 'auto'. One-line SynePruneError if it does not fit or load."""
    config = check_teacher(str(path), model_config, tokenizer, task, output)
    check_model_files(path, f"teacher '{path}'", "use a teacher with finite weights")
    try:
        model = auto_class_of(config).from_pretrained(path)
    except Exception as error:  # noqa: BLE001 - safetensors, torch and transformers raise many kinds
        raise SynePruneError(f"cannot load the weights of teacher '{path}' ({str(error).strip().splitlines()[0]}); {FIX}") from None
    return Teacher(model, path, source)
