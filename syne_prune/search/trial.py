"""The weight-sharing trial: evaluate one sub-network configuration, the one implementation every backend runs.

What it shares with the other kinds of trial (arguments, reporting, failure, fidelity) is in ``protocol.py``.

``Evaluator`` loads and verifies the super-network once, extracts the configuration's sub-network
(physically smaller, so cheaper than masking), evaluates it on the validation split and reports
``error`` (1 - metric), ``params`` and ``macs`` (ratios to the full model) and, when asked,
``latency`` (measured, ratio to the full model timed in the same process; ``latency_ms`` too). With F fidelity
levels (MO-ASHA) the validation batches are split into F chunks (in split order, each batched shortest-first)
and the error on the chunks seen so far is reported after each, with ``fidelity`` = 1..F.
The last report adds, with ``test_every_trial``, ``test_error`` (GLUE dev; the search never uses it,
so by default only the Pareto set is scored on it, after the search, with ``Evaluator.test_error``), and the trial's time split
into ``setup_s`` (process start, imports, checkpoint and data loading; in the pool backend, whose
workers load once, the hand-over from the Tuner to the worker) and ``eval_s`` (extraction and
evaluation).

Run as a script, this file is the Syne Tune LocalBackend entry point: it reads ``--key value``
hyperparameters (the mask and the constants below) and reports through ``syne_tune.Reporter``. It
never ends silently: any failure prints ``syne-prune trial failed: <reason>`` and exits 1, which the
Tuner records as a failed trial while the search goes on.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from syne_tune import Reporter

from syne_prune.artifacts import SupernetDir
from syne_prune.data import EVAL_BATCH_SIZE, encode, eval_batches, evaluation_batches, get_task, load_task, relocate
from syne_prune.embedding import embedding_search_data, is_embedding_task, search_scorer
from syne_prune.evaluation import default_device, evaluate, many_shapes, predict
from syne_prune.models import get_family
from syne_prune.numerics import require_finite_result
from syne_prune.objectives import measure_latency_ms, subnet_size
from syne_prune.search.protocol import (  # noqa: F401 - the shared protocol, also importable from here
    FAILURE_PREFIX,
    OBJECTIVES,
    failure_line,
    fidelity_levels,
    parse_hyperparameters,
    process_start_time,
    run_trial,
)
from syne_prune.search_spaces import get_search_space
from syne_prune.supernet import load_supernet
from syne_prune.surgery import extract_subnetwork


@dataclass(frozen=True)
class TrialSettings:
    """Constants of a search, passed to every trial (hyperparameters that never change). ``task_files``: the folder
    a trial reads the user's data files from when it runs where the paths the super-network recorded do not exist
    (a SageMaker job's channel, ``syne_prune.data.relocate``); None: those paths."""

    supernet: str
    objectives: tuple[str, ...] = ("error", "params")
    fidelity_levels: int = 1
    data_dir: str | None = None
    eval_batch_size: int = EVAL_BATCH_SIZE
    max_eval_examples: int | None = None
    latency_batch_size: int = 1
    latency_seq_len: int = 128
    test_every_trial: bool = False  # else only the Pareto set is scored on the test split, after the search
    task_files: str | None = None

    def as_constants(self) -> dict[str, Any]:
        """Values for the Syne Tune config space: one word each, no spaces (LocalBackend command line)."""
        return {
            "supernet": self.supernet,
            "objectives": ",".join(self.objectives),
            "fidelity_levels": self.fidelity_levels,
            "data_dir": self.data_dir or "",
            "eval_batch_size": self.eval_batch_size,
            "max_eval_examples": self.max_eval_examples or 0,
            "latency_batch_size": self.latency_batch_size,
            "latency_seq_len": self.latency_seq_len,
            "test_every_trial": int(self.test_every_trial),
            "task_files": self.task_files or "",
        }

    @classmethod
    def from_constants(cls, values: dict[str, Any]) -> "TrialSettings":
        return cls(
            supernet=str(values["supernet"]),
            objectives=tuple(str(values["objectives"]).split(",")),
            fidelity_levels=int(values["fidelity_levels"]),
            data_dir=str(values["data_dir"]) or None,
            eval_batch_size=int(values["eval_batch_size"]),
            max_eval_examples=int(values["max_eval_examples"]) or None,
            latency_batch_size=int(values["latency_batch_size"]),
            latency_seq_len=int(values["latency_seq_len"]),
            test_every_trial=bool(int(values.get("test_every_trial") or 0)),
            task_files=str(values.get("task_files") or "") or None,
        )


def load_search_data(metadata: dict[str, Any], data_dir: str | None = None, max_eval_examples: int | None = None,
                     task_files: str | None = None):
    """The splits a weight-sharing search scores on (``TaskData``): the super-network's task, validation
    fraction and seed (``metadata``: its checkpoint metadata), ``data_dir`` (else the one it was trained
    from) and at most ``max_eval_examples`` validation and test examples; the user's data files read from
    ``task_files`` when given (each checked against its recorded sha256). The search and its trials both
    load them here, so they agree on the validation size."""
    if is_embedding_task(metadata["task"]):
        return embedding_search_data(metadata, max_eval_examples, task_files)
    hp = metadata["hyperparameters"]
    task = relocate(metadata["task"], task_files) if task_files else metadata["task"]
    return load_task(task, data_dir or hp.get("data_dir"), hp["validation_fraction"], hp["seed"],
                     max_train_examples=1, max_eval_examples=max_eval_examples)


class Evaluator:
    """A verified super-network with its tokenized validation and test splits, ready to score masks."""

    def __init__(self, settings: TrialSettings, supernet=None) -> None:
        """``supernet``: an already verified and loaded one (the pool backend's shared copy); else loaded here."""
        self.settings = settings
        self.supernet = supernet if supernet is not None else load_supernet(settings.supernet)
        meta = self.supernet.metadata
        hp = meta["hyperparameters"]
        self.task = get_task(meta["task"])
        data = load_search_data(meta, settings.data_dir, settings.max_eval_examples, settings.task_files)
        tokenizer, length = self.supernet.tokenizer, hp["max_length"]
        validation = encode(data.validation, tokenizer, length, self.task.type)
        levels = fidelity_levels(settings.fidelity_levels, len(validation))
        # one chunk per fidelity level, cut in split order (so each is a fair sample) and only then length-sorted
        self.validation_chunks = [eval_batches([validation[i] for i in chunk], tokenizer, settings.eval_batch_size)
                                  for chunk in np.array_split(np.arange(len(validation)), levels)]
        self.test = evaluation_batches(data.test, tokenizer, length, self.task.type, settings.eval_batch_size)
        model = self.supernet.model
        model.to(default_device())  # a no-op on a CPU machine; on a GPU instance every evaluation runs there
        self.space = get_search_space(meta["search_space"], get_family(model.config).shape(model.config))
        self.full_size = subnet_size(model)
        self.full_latency_ms = None
        if "latency" in settings.objectives:
            self.full_latency_ms = measure_latency_ms(
                model, settings.latency_batch_size, settings.latency_seq_len, vocab_size=model.config.vocab_size
            )

    def evaluate(self, config: dict[str, Any], report: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Score ``config``; calls ``report`` once per fidelity level; returns the last report."""
        with many_shapes():
            return self._evaluate(config, report)

    def _extract(self, config: dict[str, Any]) -> tuple[torch.nn.Module, dict[str, Any]]:
        """The sub-network of ``config``, extracted, and its objectives that need no data: ``params`` and ``macs``
        as shares of the super-network's, and (when latency is an objective) ``latency_ms`` and its share ``latency``,
        both measured in this process."""
        mask = self.space.to_mask(config)
        model = self.supernet.model
        sub = extract_subnetwork(model, mask).eval()
        size = subnet_size(model, mask)
        static: dict[str, Any] = {"params": size.params / self.full_size.params, "macs": size.macs / self.full_size.macs}
        if self.full_latency_ms is not None:
            static["latency_ms"] = measure_latency_ms(
                sub, self.settings.latency_batch_size, self.settings.latency_seq_len, vocab_size=model.config.vocab_size
            )
            static["latency"] = static["latency_ms"] / self.full_latency_ms
        return sub, static

    def _evaluate(self, config: dict[str, Any], report: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        started = time.perf_counter()
        sub, static = self._extract(config)
        levels = len(self.validation_chunks)
        predictions, labels = [], []
        result: dict[str, Any] = {}
        for level, chunk in enumerate(self.validation_chunks, start=1):
            p, y = predict(sub, chunk, self.task.type)
            predictions.append(p)
            labels.append(y)
            seen_p, seen_y = self.task.type.join(predictions), self.task.type.join(labels)
            result = {"fidelity": level, "error": self.task.error(seen_y, seen_p), **static}
            if level == levels:
                if self.settings.test_every_trial and self.has_test:
                    result["test_error"] = self._test_error(sub)
                result["valid_error"] = result["error"]
                result["eval_s"] = time.perf_counter() - started
            report(require_finite_result(result))
        return result

    @property
    def has_test(self) -> bool:
        """Whether the task has test data (a user's task without a test file has none)."""
        return self.test is not None

    def test_error(self, config: dict[str, Any]) -> float | None:
        """Error of ``config``'s sub-network on the test split (GLUE dev), which the search never sees; None when
        the task has no test data."""
        if not self.has_test:
            return None
        with many_shapes():
            return self._test_error(extract_subnetwork(self.supernet.model, self.space.to_mask(config)).eval())

    def _test_error(self, sub) -> float:
        return evaluate(sub, self.test, self.task)["error"]


class EmbeddingEvaluator(Evaluator):
    """The ``Evaluator`` of an embedding super-network (``syne_prune.embedding``): its error is 1 - the Spearman
    correlation of cosine similarities with the scored pairs' scores, or 1 - the mean cosine similarity of the
    sub-network's and the teacher's embeddings of held-out sentences; with F fidelity levels, on the first 1..F of F equal
    chunks of them (``EmbeddingScorer.errors_by_level``); no test split."""

    def __init__(self, settings: TrialSettings, supernet=None) -> None:
        self.settings = settings
        self.supernet = supernet if supernet is not None else load_supernet(settings.supernet)
        meta = self.supernet.metadata
        self.task, self.test = None, None
        self.scorer = search_scorer(self.supernet.path, meta, self.supernet.tokenizer, settings.max_eval_examples, settings.eval_batch_size,
                                    settings.task_files)
        model = self.supernet.model
        model.to(default_device())
        self.space = get_search_space(meta["search_space"], get_family(model.config).shape(model.config))
        self.full_size = subnet_size(model)
        self.full_latency_ms = None
        if "latency" in settings.objectives:
            self.full_latency_ms = measure_latency_ms(model, settings.latency_batch_size, settings.latency_seq_len, vocab_size=model.config.vocab_size)

    def _evaluate(self, config: dict[str, Any], report: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        started = time.perf_counter()
        sub, static = self._extract(config)
        levels = fidelity_levels(self.settings.fidelity_levels, self.scorer.num_examples)
        result: dict[str, Any] = {}
        for level, error in enumerate(self.scorer.errors_by_level(sub, levels), start=1):
            result = {"fidelity": level, "error": error, **static}
            if level == levels:
                result |= {"valid_error": error, "eval_s": time.perf_counter() - started}
            report(require_finite_result(result))
        return result


def make_evaluator(settings: TrialSettings, supernet=None) -> Evaluator:
    """The ``Evaluator`` of the super-network ``settings.supernet`` (or the loaded ``supernet``): an
    ``EmbeddingEvaluator`` for an embedding super-network."""
    task = supernet.metadata["task"] if supernet is not None else SupernetDir(settings.supernet).read()["task"]
    return (EmbeddingEvaluator if is_embedding_task(task) else Evaluator)(settings, supernet)


def _parse(argv: list[str]) -> tuple[TrialSettings, dict[str, str]]:
    names = ("supernet", "objectives", "fidelity_levels", "data_dir", "eval_batch_size", "max_eval_examples",
             "latency_batch_size", "latency_seq_len", "test_every_trial", "task_files")
    constants, hyperparameters = parse_hyperparameters(argv, names)
    return TrialSettings.from_constants(constants), hyperparameters


def main(argv: list[str] | None = None) -> int:
    """A weight-sharing trial process: evaluate the configuration's sub-network, reporting per fidelity level."""
    return run_trial(lambda: _evaluation_trial(sys.argv[1:] if argv is None else argv))


def _evaluation_trial(argv: list[str]) -> None:
    settings, config = _parse(argv)
    reporter = Reporter()
    evaluator = make_evaluator(settings)
    setup_s = time.time() - process_start_time()  # interpreter, imports, checkpoint and data loading

    def report(result: dict[str, Any]) -> None:
        if "eval_s" in result:  # the last report carries the time split
            result = {**result, "setup_s": setup_s}
        reporter(**result)

    evaluator.evaluate(config, report)


if __name__ == "__main__":
    sys.exit(main())
