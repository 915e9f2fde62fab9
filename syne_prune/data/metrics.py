"""The metrics a task can be scored by, by name (``METRICS``), each "higher is better"; a search minimises
``error = 1 - metric`` (the paper's validation error, Section 5). Inputs are arrays of equal length: 1-D integer class
ids (classification) or float scores (regression), 2-D 0/1 indicators [examples, labels] (multi-label), or object
arrays of per-sentence tag-id arrays (token classification: ``entity_f1``; the other metrics of that type score the
tokens pooled, see ``syne_prune.data.task_types``)."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from syne_prune.errors import SynePruneError


def accuracy(labels: np.ndarray, predictions: np.ndarray) -> float:
    return float(accuracy_score(labels, predictions))


def f1(labels: np.ndarray, predictions: np.ndarray) -> float:
    """F1 of class 1 (binary tasks: MRPC, QQP)."""
    return float(f1_score(labels, predictions))


def macro_f1(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Unweighted mean of the per-class F1 over the classes in ``labels`` and ``predictions`` (multi-label: over
    the labels, a label never true nor predicted scoring 0)."""
    return float(f1_score(labels, predictions, average="macro", zero_division=0))


def micro_f1(labels: np.ndarray, predictions: np.ndarray) -> float:
    """F1 over all decisions pooled (for single-label classification it equals accuracy; multi-label: over every
    (example, label) decision)."""
    return float(f1_score(labels, predictions, average="micro", zero_division=0))


def entity_f1(labels: np.ndarray, predictions: np.ndarray, tag_names: tuple[str, ...]) -> float:
    """seqeval's entity-level F1 (micro over entity types; tags in IOB/IOB2 form, e.g. ``B-PER``, ``I-PER``, ``O``)
    of per-sentence tag-id arrays, read as the tags ``tag_names[id]``. An entity counts only when its type and
    every token's tag match."""
    from seqeval.metrics import f1_score as seqeval_f1  # imported on use: only token classification needs it

    def names(rows) -> list[list[str]]:
        return [[tag_names[int(i)] for i in row] for row in rows]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tags that are no entity (POS tags, "O" only): seqeval warns, scores 0
        return float(seqeval_f1(names(labels), names(predictions), zero_division=0))


entity_f1.reads_tag_names = True


def mcc(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Matthews correlation coefficient (CoLA's metric); 0 for constant predictions."""
    return float(matthews_corrcoef(labels, predictions))


CONSTANT_RTOL = 1e-5
"""Predictions whose spread (max - min) is at most this share of their largest magnitude are constant: float32
rounding alone (about 1e-7 relative per operation) spreads a constant answer by a few units in the last place when
batches of different lengths run different kernels, and ranking that noise made up a Spearman correlation of 0.28
for a sub-network with no attention heads, whose [CLS] output cannot depend on the input."""


def _correlation(function: Callable, name: str) -> Callable[[np.ndarray, np.ndarray], float]:
    def correlation(labels: np.ndarray, predictions: np.ndarray) -> float:
        if not (np.isfinite(labels).all() and np.isfinite(predictions).all()):
            raise SynePruneError(f"{name} correlation of non-finite scores or predictions (NaN or inf); check the data and the model")
        predictions = np.asarray(predictions, dtype=np.float64)
        if predictions.size and np.ptp(predictions) <= CONSTANT_RTOL * np.abs(predictions).max():
            return 0.0  # constant up to rounding: no correlation
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # constant input: handled below
            value = function(labels, predictions).statistic
        return 0.0 if np.isnan(value) else float(value)  # constant predictions have no correlation

    correlation.__name__ = name
    correlation.__doc__ = (f"{name.capitalize()} correlation of scores and predictions; constant predictions (up to rounding: "
                           "``CONSTANT_RTOL``) score 0. NaN or "
                           "inf in either array raise ``SynePruneError`` (scipy would return NaN, read as constant).")
    return correlation


pearson = _correlation(pearsonr, "pearson")
spearman = _correlation(spearmanr, "spearman")


@dataclass(frozen=True)
class Metric:
    """A metric: its name, its function ``(labels, predictions) -> float``, the task types it scores and its id on the
    Hugging Face hub (``hub_id``: the ``metrics`` and ``model-index`` of an export's model card; default: ``name``)."""

    name: str
    function: Callable[[np.ndarray, np.ndarray], float]
    task_types: tuple[str, ...]
    hub_id: str = ""

    def __post_init__(self) -> None:
        if not self.hub_id:
            object.__setattr__(self, "hub_id", self.name)


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("accuracy", accuracy, ("classification", "multiple-choice", "multi-label", "token-classification")),
    Metric("f1", f1, ("classification",)),
    Metric("macro-f1", macro_f1, ("classification", "multi-label", "token-classification")),
    Metric("micro-f1", micro_f1, ("classification", "multi-label", "token-classification")),
    Metric("mcc", mcc, ("classification",), "matthews_correlation"),
    Metric("pearson", pearson, ("regression",), "pearsonr"),
    Metric("spearman", spearman, ("regression",), "spearmanr"),
    Metric("entity-f1", entity_f1, ("token-classification",), "seqeval"),
)}
"""Every metric by name; a task type's default metric is its ``TaskType.default_metric`` (regression: spearman,
STS-B's metric, as in the paper)."""


def get_metric(name: str, task_type: str | None = None) -> Metric:
    """The metric called ``name``; raises ``SynePruneError`` for an unknown name, or one that does not score
    ``task_type`` (e.g. spearman for classification), listing the choices."""
    choices = [m.name for m in METRICS.values() if task_type is None or task_type in m.task_types]
    if name not in choices:
        kind = f" for {task_type}" if task_type else ""
        raise SynePruneError(f"unknown metric '{name}'{kind}; choose one of {', '.join(choices)}")
    return METRICS[name]
