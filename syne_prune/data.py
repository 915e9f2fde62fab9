"""Tasks, splits and metrics, as in the paper.

Every task reads either local files (``data_dir`` laid out like the GLUE distribution:
``RTE/train.tsv``, ``RTE/dev.tsv``, ...; SWAG as in its repository: ``SWAG/train.csv``,
``SWAG/val.csv``) or, without ``data_dir``, ``datasets.load_dataset`` from the Hugging Face hub.
Splits: validation is a seeded held-out part of train (default 30%), test is the GLUE dev split (SWAG:
its validation split); the search only ever sees validation. ``error = 1 - metric``.

SWAG is multiple choice: an example is a context (``sent1``), the start of the next sentence
(``sent2``) and four endings; each choice is encoded as the pair (context, start + ending) and the
model (``*ForMultipleChoice``) scores the four; the metric is accuracy.
"""
from __future__ import annotations

import csv
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from scipy.stats import spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef
from torch.utils.data import DataLoader
from transformers import DataCollatorForMultipleChoice, DataCollatorWithPadding

from syne_prune.errors import SynePruneError

EVAL_BATCH_SIZE = 32
"""Default batch size of every evaluation pass (see ``eval_batches``). On one CPU thread (MiniLM-L6, 128 RTE
examples of up to 128 tokens; BENCHMARKS.md, benchmarks/pool_vs_local.py), length-sorted batches of 32 took
0.49x the time of unsorted batches of 64 (16: 0.47x, 64 sorted: 0.65x). Not measured on a GPU, where larger
batches are likely faster (``--eval-batch-size``)."""


def accuracy(labels: np.ndarray, predictions: np.ndarray) -> float:
    return float(accuracy_score(labels, predictions))


def f1(labels: np.ndarray, predictions: np.ndarray) -> float:
    return float(f1_score(labels, predictions))


def matthews(labels: np.ndarray, predictions: np.ndarray) -> float:
    return float(matthews_corrcoef(labels, predictions))


def spearman(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Spearman rank correlation; constant predictions score 0. NaN or inf in either array raise
    ``SynePruneError`` (scipy would return NaN, which would otherwise read as constant)."""
    if not (np.isfinite(labels).all() and np.isfinite(predictions).all()):
        raise SynePruneError("spearman correlation of non-finite scores or predictions (NaN or inf); check the data and the model")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input: handled below
        value = spearmanr(labels, predictions).statistic
    return 0.0 if np.isnan(value) else float(value)  # constant predictions have no rank correlation


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

    @property
    def is_regression(self) -> bool:
        return self.num_labels == 1

    @property
    def is_multiple_choice(self) -> bool:
        return self.num_choices > 0

    def error(self, labels: np.ndarray, predictions: np.ndarray) -> float:
        return 1.0 - self.metric(labels, predictions)


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("rte", 2, "accuracy", accuracy, ("sentence1", "sentence2"), ("nyu-mll/glue", "rte"), "validation",
             "RTE", ("sentence1", "sentence2", "label"), ("entailment", "not_entailment")),
        Task("mrpc", 2, "f1", f1, ("sentence1", "sentence2"), ("nyu-mll/glue", "mrpc"), "validation",
             "MRPC", ("#1 String", "#2 String", "Quality")),
        Task("cola", 2, "matthews", matthews, ("sentence",), ("nyu-mll/glue", "cola"), "validation",
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


@dataclass
class Split:
    """Texts (one list per text column) and labels of one split."""

    texts: list[list[str]]
    labels: np.ndarray
    num_choices: int = 0  # multiple choice: texts are [contexts, starts, ending 0, ending 1, ...]

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray) -> "Split":
        return Split([[column[i] for i in index] for column in self.texts], self.labels[index], self.num_choices)


@dataclass
class TaskData:
    task: Task
    train: Split
    validation: Split
    test: Split


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise SynePruneError(f"unknown task '{name}'; choose one of {', '.join(TASKS)}")
    return TASKS[name]


def load_task(
    name: str,
    data_dir: str | Path | None = None,
    validation_fraction: float = 0.3,
    seed: int = 0,
    max_train_examples: int | None = None,
    max_eval_examples: int | None = None,
) -> TaskData:
    """Train / validation (held out from train, seeded) / test (GLUE dev) splits of a task."""
    task = get_task(name)
    if not 0 < validation_fraction < 1:
        raise SynePruneError(f"validation fraction must be in (0, 1), got {validation_fraction}")
    if task.generator is not None:
        train, test = task.generator(0)  # fixed data; `seed` only splits off validation
    elif data_dir is not None:
        train, test = _read_local(task, Path(data_dir), task.train_file), _read_local(task, Path(data_dir), task.dev_file)
    else:
        train, test = _read_hub(task)
    order = np.random.RandomState(seed).permutation(len(train))
    num_validation = max(1, int(round(validation_fraction * len(train))))
    validation, train = train.take(order[:num_validation]), train.take(order[num_validation:])
    if max_train_examples is not None:
        train = train.take(np.arange(min(max_train_examples, len(train))))
    if max_eval_examples is not None:
        validation = validation.take(np.arange(min(max_eval_examples, len(validation))))
        test = test.take(np.arange(min(max_eval_examples, len(test))))
    return TaskData(task, train, validation, test)


def _read_local(task: Task, data_dir: Path, file_name: str) -> Split:
    if task.folder is None:
        raise SynePruneError(f"task '{task.name}' has no local TSV reader; drop --data-dir to load it from the hub")
    path = data_dir / task.folder / file_name
    if not path.is_file():
        raise SynePruneError(f"{path} not found; --data-dir must hold {task.folder}/{task.train_file} and "
                             f"{task.folder}/{task.dev_file} in {_layout(task)} layout")
    columns, rows = _read_tsv(path, task.header)
    missing = [c for c in task.local_columns if c not in columns]
    if missing:
        raise SynePruneError(f"{path} lacks column(s) {missing}; expected the {_layout(task)} {task.folder} layout")
    *text_columns, label_column = (columns.index(c) for c in task.local_columns)
    texts = [[row[c] for row in rows] for c in text_columns]
    labels = _parse_labels(task, [row[label_column] for row in rows], path, first_line=2 if task.header else 1)
    return Split(texts, labels, task.num_choices)


def _layout(task: Task) -> str:
    return "SWAG repository (CSV)" if task.is_multiple_choice else "GLUE"


def _read_tsv(path: Path, header: bool) -> tuple[list, list[list[str]]]:
    """GLUE TSV rows: quoting off (stray quotes are text), a BOM tolerated, every row as wide as the first.
    A ``.csv`` file (SWAG) is read as standard CSV, quotes included."""
    dialect = {"delimiter": ","} if path.suffix == ".csv" else {"delimiter": "\t", "quoting": csv.QUOTE_NONE}
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.reader(handle, **dialect))
    except UnicodeDecodeError:
        raise SynePruneError(f"{path} is not UTF-8 text; restore the original GLUE file") from None
    if not rows:
        raise SynePruneError(f"{path} is empty; restore the original GLUE file")
    width = len(rows[0])
    for number, row in enumerate(rows, start=1):
        if len(row) != width:
            raise SynePruneError(f"{path} is malformed: line {number} has {len(row)} fields, expected {width}; restore the original file")
    columns = rows[0] if header else list(range(width))
    return columns, rows[1:] if header else rows


def _parse_labels(task: Task, raw: list[str], path: Path, first_line: int = 2) -> np.ndarray:
    """Label ids (classification) or float32 scores (regression) of the rows; ``first_line``: the file line of ``raw[0]``."""
    if task.is_regression:
        try:
            scores = np.asarray([float(v) for v in raw], dtype=np.float32)
        except ValueError:
            index = next(i for i, v in enumerate(raw) if not _is_float(v))
            raise SynePruneError(f"{path} line {first_line + index} has a non-numeric score {raw[index]!r}; restore the original "
                                 "GLUE file") from None
        require_finite_scores(scores, str(path), first_line)
        return scores
    if task.label_values:
        ids = {value: i for i, value in enumerate(task.label_values)}
    else:
        ids = {str(i): i for i in range(task.num_labels)}
    unknown = sorted({v for v in raw if v not in ids})
    if unknown:
        line = first_line + next(i for i, v in enumerate(raw) if v not in ids)
        raise SynePruneError(f"{path} has unknown label(s) {unknown[:3]} (expected {sorted(ids)}), the first on line {line}; "
                             "restore the original GLUE file")
    return np.asarray([ids[v] for v in raw], dtype=np.int64)


def require_finite_scores(scores: np.ndarray, source: str, first_line: int = 1, unit: str = "line") -> None:
    """Regression scores must be finite: NaN or inf (which ``float`` parses) would poison the loss and the metric.
    Raises ``SynePruneError`` naming ``source`` and the line (``first_line`` is the line of ``scores[0]``)."""
    bad = np.flatnonzero(~np.isfinite(scores))
    if len(bad):
        raise SynePruneError(f"{source} {unit} {first_line + int(bad[0])} has a non-finite score {scores[bad[0]]} "
                             f"({len(bad)} such row(s)); fix or remove those rows")


def _is_float(value: str) -> bool:
    try:
        float(value)
        return True
    except ValueError:
        return False


def _read_hub(task: Task) -> tuple[Split, Split]:  # pragma: no cover - needs the network
    import datasets  # slow to import (~1 s) and needed only for data from the hub

    path, name = task.hub
    try:
        dataset = datasets.load_dataset(path, name)
    except Exception as error:  # noqa: BLE001 - offline, unknown dataset, ...
        raise SynePruneError(
            f"cannot load '{task.name}' from the Hugging Face hub ({str(error).splitlines()[0] if str(error) else type(error).__name__}); "
            f"pass --data-dir with local GLUE files"
        ) from None

    def split(part) -> Split:
        labels = np.asarray(part["label"], dtype=np.float32 if task.is_regression else np.int64)
        if task.is_regression:
            require_finite_scores(labels, f"hub dataset {path}/{name} (train or {task.hub_test_split})", 0, unit="row")
        return Split([list(part[c]) for c in task.text_columns], labels, task.num_choices)

    return split(dataset["train"]), split(dataset[task.hub_test_split])


def encode(split: Split, tokenizer, max_length: int, is_regression: bool) -> list[dict]:
    """Tokenize a split once (truncated, unpadded); padding happens per batch in ``data_loader``.

    Multiple choice: one (context, start + ending) pair per choice; each example's fields are lists
    with one entry per choice."""
    label_type = float if is_regression else int
    if split.num_choices:
        contexts, starts, *endings = split.texts
        first = [context for context in contexts for _ in endings]
        second = [f"{starts[i]} {ending[i]}".strip() for i in range(len(split)) for ending in endings]
        encoded = tokenizer(first, second, truncation=True, max_length=max_length)
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]
        c = len(endings)
        return [{**{k: encoded[k][i * c:(i + 1) * c] for k in keys}, "labels": int(split.labels[i])} for i in range(len(split))]
    encoded = tokenizer(*split.texts, truncation=True, max_length=max_length)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]
    return [{**{k: encoded[k][i] for k in keys}, "labels": label_type(split.labels[i])} for i in range(len(split))]


def data_loader(examples: list[dict], tokenizer, batch_size: int, shuffle: bool = False, seed: int = 0):
    """Batches with dynamic padding (each batch padded to its longest sequence; multiple choice: B x C x L)."""
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    multiple_choice = bool(examples) and isinstance(examples[0]["input_ids"][0], list)
    collate = (DataCollatorForMultipleChoice if multiple_choice else DataCollatorWithPadding)(tokenizer)
    return DataLoader(examples, batch_size=batch_size, shuffle=shuffle, generator=generator, collate_fn=collate)


def _length(example: dict) -> int:
    ids = example["input_ids"]
    return max(map(len, ids)) if ids and isinstance(ids[0], list) else len(ids)


def eval_batches(examples: list[dict], tokenizer, batch_size: int = EVAL_BATCH_SIZE) -> list[dict]:
    """Batches for an inference pass, shortest examples first, so each batch pads to nearly its own length.

    Only for evaluation, whose metrics do not depend on the order of examples (timing: ``EVAL_BATCH_SIZE``)."""
    return list(data_loader(sorted(examples, key=_length), tokenizer, batch_size))
