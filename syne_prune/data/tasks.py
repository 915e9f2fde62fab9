"""What a task is: the built-in tasks of the paper (``TASKS``: GLUE, IMDB, SWAG, a generated demo task) and a task
from the user's own files (``TaskSpec``).

Splits: validation is a seeded held-out part of train (default 30%) unless a validation file is given; test is the
GLUE dev split (SWAG: its validation split), or the user's test file; the search only ever sees validation.
``error = 1 - metric``.

SWAG is multiple choice: an example is a context (``sent1``), the start of the next sentence
(``sent2``) and four endings; each choice is encoded as the pair (context, start + ending) and the
model (``*ForMultipleChoice``) scores the four; the metric is accuracy.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Callable

import numpy as np

from .metrics import accuracy, f1, mcc, spearman
from .splits import Split
from .task_types import TaskType, get_task_type


@dataclass(frozen=True)
class TaskSpec:
    """A task from the user's own data, accepted wherever a task name is (``TrainingConfig.task``, ``prune``,
    ``QuickstartConfig.task``).

    Sources (exactly one): ``train_file`` (with optional ``validation_file`` and ``test_file``; CSV, TSV, JSON,
    JSON Lines or Parquet, by suffix) or ``dataset`` (a ``datasets.DatasetDict`` saved with ``save_to_disk``,
    splits ``train``, ``validation``, ``test``; or a hub id when online). ``text_columns``: one text column or a
    pair; ``label_column``: the labels (strings, integers or float scores). Left empty, ``text_columns``,
    ``task_type`` (a name in ``syne_prune.data.TASK_TYPES``: classification, regression, multi-label,
    token-classification), ``metric`` (``syne_prune.data.METRICS``), ``labels`` (class names in id
    order) and ``sha256`` (``((split, digest), ...)`` of the files read) are filled in by
    ``syne_prune.data.resolve_task``, which a super-network records, so every later stage reads the same task.
    Token classification: ``text_columns`` is the one column of word lists and ``label_column`` holds one tag per
    word; a CoNLL file (``.conll``) gives the columns ``tokens`` and ``label``."""

    train_file: str | None = None
    validation_file: str | None = None
    test_file: str | None = None
    dataset: str | None = None
    text_columns: tuple[str, ...] = ()
    label_column: str = "label"
    task_type: str | None = None
    metric: str | None = None
    labels: tuple[str, ...] = ()
    sha256: tuple[tuple[str, str], ...] = ()
    name: str = ""

    @property
    def is_resolved(self) -> bool:
        """Columns, type, metric (and class names, for classification) known: ``get_task`` can make a Task of it."""
        return bool(self.name and self.text_columns and self.task_type and self.metric
                    and (self.labels or self.task_type == "regression"))

    def to_json(self) -> dict[str, Any]:
        """The specification as JSON values (tuples as lists), as ``supernet.json`` stores it under ``task``."""
        return asdict(self)

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> "TaskSpec":
        """The specification ``to_json`` wrote; unknown keys are ignored, lists become tuples."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in record.items() if k in names}
        for key in ("text_columns", "labels"):
            values[key] = tuple(values.get(key) or ())
        values["sha256"] = tuple(tuple(pair) for pair in values.get("sha256") or ())
        return cls(**values)


@dataclass(frozen=True)
class Task:
    """One task: where its text and labels are, how it is scored."""

    name: str
    num_labels: int  # 1: regression
    metric_name: str
    metric: Callable[[np.ndarray, np.ndarray], float]
    text_columns: tuple[str, ...]  # one or two text fields, as named in the Hugging Face dataset
    hub: tuple[str, str | None]  # load_dataset(path, name)
    hub_test_split: str
    # local GLUE TSV layout; None when the task has no local reader
    folder: str | None = None
    local_columns: tuple[str | int, ...] = ()  # text columns then label column in the TSV
    label_values: tuple[str, ...] = ()  # label strings in id order ("" when labels are numbers)
    header: bool = True
    dev_file: str = "dev.tsv"
    generator: Callable[[int], tuple["Split", "Split"]] | None = None  # tasks made offline, in code
    train_file: str = "train.tsv"
    num_choices: int = 0  # multiple choice: text columns are context, start, then one ending per choice
    spec: TaskSpec | None = None  # a task from the user's files (resolved); None for the built-in tasks
    task_type: str = ""  # a name in TASK_TYPES; empty: multiple choice with choices, regression with one label, else classification

    def __post_init__(self) -> None:
        if not self.task_type:
            kind = "multiple-choice" if self.num_choices else "regression" if self.num_labels == 1 else "classification"
            object.__setattr__(self, "task_type", kind)

    @property
    def type(self) -> TaskType:
        """The task's ``TaskType``: its head, encoding, losses, predictions and metrics."""
        return get_task_type(self.task_type)

    @property
    def is_regression(self) -> bool:
        return self.task_type == "regression"

    @property
    def is_multiple_choice(self) -> bool:
        return self.task_type == "multiple-choice"

    def error(self, labels: np.ndarray, predictions: np.ndarray) -> float:
        return 1.0 - self.metric(labels, predictions)


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("rte", 2, "accuracy", accuracy, ("sentence1", "sentence2"), ("nyu-mll/glue", "rte"), "validation",
             "RTE", ("sentence1", "sentence2", "label"), ("entailment", "not_entailment")),
        Task("mrpc", 2, "f1", f1, ("sentence1", "sentence2"), ("nyu-mll/glue", "mrpc"), "validation",
             "MRPC", ("#1 String", "#2 String", "Quality")),
        Task("cola", 2, "mcc", mcc, ("sentence",), ("nyu-mll/glue", "cola"), "validation",
             "CoLA", (3, 1), header=False),
        Task("stsb", 1, "spearman", spearman, ("sentence1", "sentence2"), ("nyu-mll/glue", "stsb"), "validation",
             "STS-B", ("sentence1", "sentence2", "score")),
        Task("sst2", 2, "accuracy", accuracy, ("sentence",), ("nyu-mll/glue", "sst2"), "validation",
             "SST-2", ("sentence", "label")),
        Task("qnli", 2, "accuracy", accuracy, ("question", "sentence"), ("nyu-mll/glue", "qnli"), "validation",
             "QNLI", ("question", "sentence", "label"), ("entailment", "not_entailment")),
        Task("mnli", 3, "accuracy", accuracy, ("premise", "hypothesis"), ("nyu-mll/glue", "mnli"), "validation_matched",
             "MNLI", ("sentence1", "sentence2", "gold_label"), ("entailment", "neutral", "contradiction"),
             dev_file="dev_matched.tsv"),
        Task("qqp", 2, "f1", f1, ("question1", "question2"), ("nyu-mll/glue", "qqp"), "validation",
             "QQP", ("question1", "question2", "is_duplicate")),
        Task("imdb", 2, "accuracy", accuracy, ("text",), ("stanfordnlp/imdb", None), "test"),
        Task("swag", 4, "accuracy", accuracy, ("sent1", "sent2", "ending0", "ending1", "ending2", "ending3"),
             ("allenai/swag", "regular"), "validation", "SWAG",
             ("sent1", "sent2", "ending0", "ending1", "ending2", "ending3", "label"),
             train_file="train.csv", dev_file="val.csv", num_choices=4),
        Task("synthetic_sentiment", 2, "accuracy", accuracy, ("sentence",), ("", None), "",
             generator=lambda seed: synthetic_sentiment(seed)),
    )
}

_SUBJECTS = ["the film", "this movie", "the acting", "the plot", "the soundtrack", "the ending", "the script",
             "the dialogue", "the cast", "the story", "the camera work", "the pacing"]
_POSITIVE = ["good", "great", "wonderful", "moving", "brilliant", "charming", "gripping", "delightful", "superb", "clever"]
_NEGATIVE = ["bad", "dull", "boring", "clumsy", "awful", "tedious", "weak", "predictable", "shallow", "messy"]
_FRAMES = ["{s} was {n}{a}.", "i thought {s} was {n}{a}.", "honestly, {s} is {n}{a}.", "{s} felt {n}{a} to me.",
           "overall {s} was {n}{a}, in my opinion."]


def synthetic_sentiment(seed: int = 0, num_train: int = 1200, num_test: int = 300) -> tuple["Split", "Split"]:
    """A generated sentiment task for offline demos (not a benchmark): template sentences about a film
    with a positive or negative adjective, negated ("not") in a quarter of them, which flips the label;
    label 1 = positive. Deterministic for a seed; train and test are drawn from the same templates."""
    rng = np.random.RandomState(seed + 7919)

    def draw(count: int) -> Split:
        sentences, labels = [], []
        for _ in range(count):
            positive = rng.rand() < 0.5
            negated = rng.rand() < 1 / 4
            adjective = (_POSITIVE if positive else _NEGATIVE)[rng.randint(10)]
            frame = _FRAMES[rng.randint(len(_FRAMES))]
            subject = _SUBJECTS[rng.randint(len(_SUBJECTS))]
            sentences.append(frame.format(s=subject, n="not " if negated else "", a=adjective).capitalize())
            labels.append(int(positive != negated))
        return Split([sentences], np.asarray(labels, dtype=np.int64))

    return draw(num_train), draw(num_test)
