"""The kinds of task (``TASK_TYPES``): one ``TaskType`` per kind says everything that follows from what a model's head
predicts, so no other module asks which kind it has.

Each type names

* its head: the transformers Auto class (``auto_class``) and ``problem_type``, and the ``from_pretrained`` arguments
  that give a model that head (``model_kwargs``); ``claims(auto_class, config)`` recognises a checkpoint's head;
* its encoding (``encode``: a ``Split`` tokenized once, unpadded) and collation (``collator``: batches padded per
  batch); ``claims_example`` recognises its encoded examples;
* its loss: the model's own (transformers computes it from ``labels`` and ``problem_type``), and its distillation loss
  (``distillation_loss(student, teacher, labels, temperature)``, logit shapes on each type);
* its predictions from logits (``batch_predictions`` on the logits' device, ``to_numpy`` after the last batch, or
  ``batch_outputs`` for both at once; joined over batches by ``join``), its default metric and the
  metric function it calls (``metric_function``), and the constant answers a network that learned nothing gives
  (``constant_answers``).

Adding a type: a ``TaskType`` subclass (in this module or its own) and ``register_task_type(TheType())`` (types
registered later are asked first by ``type_of_head`` and ``type_of_examples``); metrics it
can be scored by list its name in ``syne_prune.data.metrics.METRICS``; a type users can give data files for
(``from_files``) also needs its reading in ``syne_prune.data.files`` (``LABEL_READERS``).
"""
from __future__ import annotations

import copy
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers.pre_tokenizers import ByteLevel
from transformers import DataCollatorForMultipleChoice, DataCollatorForTokenClassification, DataCollatorWithPadding

from syne_prune.errors import SynePruneError

from .splits import Split

SEQUENCE_HEAD = "AutoModelForSequenceClassification"


def _keys(encoded) -> list[str]:
    return [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]


def words_tokenizer(tokenizer: Any) -> Any:
    """The tokenizer to read pre-split words with: for a byte-level BPE tokenizer that adds no space before the text
    (RoBERTa's, ModernBERT's), a copy that does, so every word starts with the space mark it carries inside running
    text (``Ġmet``) instead of being glued to the one before it; transformers' token-classification example loads such
    tokenizers with ``add_prefix_space=True`` for the same reason. Other tokenizers (WordPiece, SentencePiece's
    ``▁`` per word) are returned as they are; the given one is never changed."""
    pre_tokenizer = getattr(getattr(tokenizer, "backend_tokenizer", None), "pre_tokenizer", None)
    if not isinstance(pre_tokenizer, ByteLevel) or pre_tokenizer.add_prefix_space:
        return tokenizer
    words = copy.deepcopy(tokenizer)
    spaced = words.backend_tokenizer.pre_tokenizer
    spaced.add_prefix_space = True
    words.backend_tokenizer.pre_tokenizer = spaced
    return words


def objects(values: list) -> np.ndarray:
    """A 1-D object array holding ``values`` as they are (numpy would stack arrays of equal length into 2-D)."""
    array = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        array[i] = value
    return array


class TaskType:
    """Classification, the base of the other types: one class per example.

    Logits [batch, num_labels]; labels [batch] class ids; loss cross-entropy; prediction argmax; default metric
    accuracy."""

    name = "classification"
    title = "classification"  # in messages
    auto_class = SEQUENCE_HEAD
    problem_type: str | None = "single_label_classification"
    pipeline_tag = "text-classification"
    default_metric = "accuracy"
    from_files = True  # users can give data files of this type

    def model_kwargs(self, num_labels: int, label_names: tuple[str, ...] = ()) -> dict[str, Any]:
        """``from_pretrained`` arguments giving a model this head for ``num_labels`` labels named ``label_names``."""
        if label_names:  # the user's label names travel with every model made from the task (their count is num_labels)
            return {"id2label": dict(enumerate(label_names)), "label2id": {name: i for i, name in enumerate(label_names)},
                    "problem_type": self.problem_type}
        return {"num_labels": num_labels, "problem_type": self.problem_type}

    def head_labels(self, num_labels: int) -> int:
        """The ``config.num_labels`` of a head for ``num_labels`` labels (0: the head's count does not matter)."""
        return num_labels

    def claims(self, auto_class: str, config: Any) -> bool:
        """Whether a checkpoint whose head loads with ``auto_class`` (its config ``config``) predicts this type."""
        return auto_class == self.auto_class and config.problem_type not in ("regression", "multi_label_classification") \
            and config.num_labels != 1

    def encode(self, split: Split, tokenizer, max_length: int) -> list[dict]:
        """The split tokenized once (truncated, unpadded): one dict per example with the tokenizer's fields and ``labels``."""
        encoded = tokenizer(*split.texts, truncation=True, max_length=max_length)
        keys = _keys(encoded)
        labels = self.example_labels(split.labels)
        return [dict(zip((*keys, "labels"), row)) for row in zip(*(encoded[k] for k in keys), labels)]

    def example_labels(self, labels: np.ndarray) -> list:
        """Labels as the collator expects them: Python numbers (or lists)."""
        return [int(v) for v in labels.tolist()]

    def claims_example(self, example: dict) -> bool:
        """Whether an encoded example is of this type (the collator follows)."""
        return not isinstance(example["labels"], list) and not isinstance(example["input_ids"][0], list)

    def collator(self, tokenizer) -> Callable:
        return DataCollatorWithPadding(tokenizer)

    def batch_predictions(self, logits: torch.Tensor) -> torch.Tensor:
        """One batch's predictions, on the logits' device (no copy to the host; here: class ids, [batch])."""
        return logits.argmax(-1)

    def to_numpy(self, predictions: torch.Tensor, labels: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """One batch's ``batch_predictions`` and labels as numpy (here: int64, [batch])."""
        return predictions.cpu().numpy().astype(np.int64), labels.cpu().numpy()

    def batch_outputs(self, logits: torch.Tensor, labels: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """One batch's predictions and labels as numpy: ``to_numpy(batch_predictions(logits), labels)``."""
        return self.to_numpy(self.batch_predictions(logits), labels)

    def join(self, parts: list[np.ndarray]) -> np.ndarray:
        """Per-batch predictions or labels joined in order."""
        return np.concatenate(parts)

    def distillation_loss(self, student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
        """``T² · CE(student / T, softmax(teacher / T)) + CE(student, labels)`` (Hinton et al. 2015, sec. 2)."""
        soft = F.cross_entropy(student / temperature, F.softmax(teacher / temperature, dim=-1))
        return temperature**2 * soft + F.cross_entropy(student, labels)

    def constant_answers(self, labels: np.ndarray, num_labels: int) -> list[tuple[Any, np.ndarray]]:
        """``(answer, predictions)`` of every constant answer worth trying on ``labels``: here each class."""
        return [(answer, np.full(len(labels), answer, dtype=labels.dtype)) for answer in range(num_labels)]

    def metric_function(self, function: Callable, label_names: tuple[str, ...]) -> Callable[[np.ndarray, np.ndarray], float]:
        """The ``(labels, predictions) -> float`` a task of this type scores with, from a metric's ``function``."""
        return function


class RegressionType(TaskType):
    """One score per example. Logits [batch, 1]; labels [batch] floats; loss MSE; prediction the logit; metric spearman."""

    name = "regression"
    title = "regression"
    problem_type = "regression"
    default_metric = "spearman"

    def model_kwargs(self, num_labels: int, label_names: tuple[str, ...] = ()) -> dict[str, Any]:
        return {"num_labels": 1, "problem_type": self.problem_type}

    def head_labels(self, num_labels: int) -> int:
        return 1

    def claims(self, auto_class: str, config: Any) -> bool:
        return auto_class == self.auto_class and (config.num_labels == 1 or config.problem_type == "regression")

    def example_labels(self, labels: np.ndarray) -> list:
        return [float(v) for v in labels.tolist()]

    def batch_predictions(self, logits):
        return logits.squeeze(-1).float()

    def to_numpy(self, predictions, labels):
        return predictions.cpu().numpy(), labels.cpu().numpy()

    def distillation_loss(self, student, teacher, labels, temperature):
        """``MSE(student, teacher) + MSE(student, labels)`` on scores [batch] (logits [batch, 1] are squeezed)."""
        student, teacher = student.squeeze(-1), teacher.squeeze(-1)
        return F.mse_loss(student, teacher) + F.mse_loss(student, labels.to(student.dtype).reshape(student.shape))

    def constant_answers(self, labels, num_labels):
        mean = float(labels.mean())
        return [(mean, np.full(len(labels), mean, dtype=labels.dtype))]


class MultipleChoiceType(TaskType):
    """A context and ``num_choices`` endings; the model scores each. Inputs [batch, choices, length]; logits
    [batch, choices]; labels [batch] choice ids; loss cross-entropy; prediction argmax; metric accuracy."""

    name = "multiple-choice"
    title = "multiple choice"
    auto_class = "AutoModelForMultipleChoice"
    problem_type = None
    pipeline_tag = "multiple-choice"
    from_files = False

    def model_kwargs(self, num_labels, label_names=()):
        return {}

    def head_labels(self, num_labels):
        return 0

    def claims(self, auto_class, config):
        return auto_class == self.auto_class

    def encode(self, split, tokenizer, max_length):
        """One (context, start + ending) pair per choice; each example's fields are lists with one entry per choice."""
        contexts, starts, *endings = split.texts
        first = [context for context in contexts for _ in endings]
        second = [f"{starts[i]} {ending[i]}".strip() for i in range(len(split)) for ending in endings]
        encoded = tokenizer(first, second, truncation=True, max_length=max_length)
        keys, c = _keys(encoded), len(endings)
        return [{**{k: encoded[k][i * c:(i + 1) * c] for k in keys}, "labels": int(split.labels[i])} for i in range(len(split))]

    def claims_example(self, example):
        return isinstance(example["input_ids"][0], list)

    def collator(self, tokenizer):
        return DataCollatorForMultipleChoice(tokenizer)


class MultiLabelType(TaskType):
    """Any number of labels per example (``problem_type`` multi_label_classification). Logits [batch, num_labels];
    labels [batch, num_labels] 0/1 floats; loss binary cross-entropy on each label; a label is predicted when its
    sigmoid exceeds ``threshold`` (0.5); metric micro-F1 (macro-F1 available)."""

    name = "multi-label"
    title = "multi-label"
    problem_type = "multi_label_classification"
    default_metric = "micro-f1"
    threshold = 0.5

    def claims(self, auto_class, config):
        return auto_class == self.auto_class and config.problem_type == self.problem_type

    def example_labels(self, labels):
        return [[float(v) for v in row] for row in labels.tolist()]

    def claims_example(self, example):
        return isinstance(example["labels"], list) and bool(example["labels"]) and isinstance(example["labels"][0], float)

    def batch_predictions(self, logits):
        return torch.sigmoid(logits.float()) > self.threshold

    def to_numpy(self, predictions, labels):
        return predictions.cpu().numpy().astype(np.int64), labels.cpu().numpy().astype(np.int64)

    def distillation_loss(self, student, teacher, labels, temperature):
        """``T² · BCE(student / T, sigmoid(teacher / T)) + BCE(student, labels)``, every label a binary decision."""
        soft = F.binary_cross_entropy_with_logits(student / temperature, torch.sigmoid(teacher / temperature))
        return temperature**2 * soft + F.binary_cross_entropy_with_logits(student, labels.to(student.dtype))

    def constant_answers(self, labels, num_labels):
        return [(name, np.broadcast_to(value, labels.shape).astype(np.int64)) for name, value in (("none", 0), ("all", 1))]


class TokenClassificationType(TaskType):
    """One tag per word (NER, POS). A split's texts are one column of word lists and its labels an object array of
    per-word tag-id arrays. Words are tokenized as pre-split words (a fast tokenizer's ``word_ids``); as transformers'
    token-classification examples do, a word's first sub-word carries its tag and the other sub-words (and special
    tokens) the label -100, which loss, distillation and scoring ignore. Logits [batch, length, num_labels]; labels
    [batch, length]; loss cross-entropy over labelled tokens; prediction argmax per labelled token; metric seqeval's
    entity F1 (``entity-f1``)."""

    name = "token-classification"
    title = "token classification"
    auto_class = "AutoModelForTokenClassification"
    problem_type = None
    pipeline_tag = "token-classification"
    default_metric = "entity-f1"
    ignored = -100

    def model_kwargs(self, num_labels, label_names=()):
        return {key: value for key, value in super().model_kwargs(num_labels, label_names).items() if key != "problem_type"}

    def claims(self, auto_class, config):
        return auto_class == self.auto_class

    def encode(self, split, tokenizer, max_length):
        if not getattr(tokenizer, "is_fast", False):
            raise SynePruneError(f"token classification needs a fast tokenizer (word_ids), {type(tokenizer).__name__} is not one; "
                                 "save the model with its fast tokenizer (tokenizer.json)")
        try:
            encoded = words_tokenizer(tokenizer)(list(map(list, split.texts[0])), is_split_into_words=True, truncation=True,
                                                 max_length=max_length)
        except (ValueError, AssertionError) as error:  # e.g. a byte-level BPE tokenizer without add_prefix_space
            raise SynePruneError(f"the tokenizer cannot read pre-split words ({str(error).splitlines()[0]}); save the tokenizer "
                                 "with add_prefix_space=True") from None
        keys = _keys(encoded)
        examples = []
        for index, tags in enumerate(split.labels):
            labels, previous = [], None
            for word in encoded.word_ids(index):
                labels.append(self.ignored if word is None or word == previous else int(tags[word]))
                previous = word
            examples.append({**{k: encoded[k][index] for k in keys}, "labels": labels})
        return examples

    def claims_example(self, example):
        return isinstance(example["labels"], list) and (not example["labels"] or isinstance(example["labels"][0], int))

    def collator(self, tokenizer):
        return DataCollatorForTokenClassification(tokenizer)

    def to_numpy(self, predictions, labels):
        """Per sentence, the predicted and true tag ids of its labelled tokens: two object arrays of int64 arrays."""
        predictions, labels = predictions.cpu().numpy(), labels.cpu().numpy()
        keep = labels != self.ignored
        return (objects([row[kept].astype(np.int64) for row, kept in zip(predictions, keep)]),
                objects([row[kept].astype(np.int64) for row, kept in zip(labels, keep)]))

    def distillation_loss(self, student, teacher, labels, temperature):
        """Classification's distillation loss over the labelled tokens (labels != -100) of logits [batch, length, labels]."""
        keep = labels != self.ignored
        if not bool(keep.any()):
            return student.sum() * 0.0
        return super().distillation_loss(student[keep], teacher[keep], labels[keep], temperature)

    def constant_answers(self, labels, num_labels):
        return [(answer, objects([np.full(len(row), answer, dtype=np.int64) for row in labels])) for answer in range(num_labels)]

    def metric_function(self, function, label_names):
        """seqeval's metrics read tag names per sentence; the others score every labelled token."""
        if getattr(function, "reads_tag_names", False):
            return lambda labels, predictions: function(labels, predictions, label_names)
        return lambda labels, predictions: function(np.concatenate(list(labels)), np.concatenate(list(predictions)))


TASK_TYPES: dict[str, TaskType] = {}
"""The task types by name; ``TaskSpec.task_type`` and ``--task-type`` choose among those with ``from_files``."""


def register_task_type(task_type: TaskType) -> TaskType:
    """Add ``task_type`` to ``TASK_TYPES`` (under its ``name``); returns it."""
    TASK_TYPES[task_type.name] = task_type
    return task_type


for _type in (TaskType(), RegressionType(), MultipleChoiceType(), MultiLabelType(), TokenClassificationType()):
    register_task_type(_type)


def get_task_type(value: TaskType | str | bool) -> TaskType:
    """The task type named ``value`` (or ``value`` itself); a bool says whether the task is a regression (True) or a
    classification (False). Raises ``SynePruneError`` for an unknown name, listing the types."""
    if isinstance(value, TaskType):
        return value
    if isinstance(value, bool):
        value = "regression" if value else "classification"
    if value not in TASK_TYPES:
        raise SynePruneError(f"unknown task type '{value}'; choose one of {', '.join(file_task_types())}")
    return TASK_TYPES[value]


def file_task_types() -> list[str]:
    """The names of the types users can give data files for (``--task-type`` choices)."""
    return [name for name, task_type in TASK_TYPES.items() if task_type.from_files]


def type_of_head(auto_class: str, config: Any) -> TaskType | None:
    """The type a checkpoint's head predicts (``auto_class``: the Auto class its head loads with), None for a base model.
    Types registered later are asked first (classification, the most general, last)."""
    return next((t for t in reversed(TASK_TYPES.values()) if t.claims(auto_class, config)), None)


def type_of_examples(examples: list[dict]) -> TaskType:
    """The type whose ``encode`` made ``examples`` (classification for none); types registered later are asked first."""
    if not examples:
        return TASK_TYPES["classification"]
    return next((t for t in reversed(TASK_TYPES.values()) if t.claims_example(examples[0])), TASK_TYPES["classification"])


def default_metrics() -> dict[str, str]:
    """``{type name: default metric}`` of the types users can give data files for."""
    return {name: TASK_TYPES[name].default_metric for name in file_task_types()}
