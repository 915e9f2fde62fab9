"""The protocol every kind of trial shares with the search (``kinds/``): how a trial gets its arguments, how
it reports and fails, and the fidelity rule.

- **Arguments**: a trial process gets ``--key value`` pairs: the search's constants (one word each) and its
  configuration (the mask); ``parse_hyperparameters`` splits them. A task travels as one word (``task_word``): a
  built-in task's name, or a user's resolved specification as base64 JSON, so every trial reads the same files,
  columns and class names; ``task_files`` names the folder a trial reads those files from when it runs elsewhere
  (a SageMaker job's channel; empty: where the specification says).
- **Reporting**: through ``syne_tune.Reporter`` (``[tune-metric]`` lines on stdout); every report carries
  ``fidelity`` and the objectives (``OBJECTIVES``: ``error`` = 1 - metric, ``params``/``macs``/``latency`` as
  ratios to the unpruned model); the last one adds ``setup_s`` (process start to ready, seconds;
  ``process_start_time``) and ``eval_s``.
- **Failure**: a trial never ends silently: its last ``std.err`` line is ``failure_line(error)``, which the
  search's ledger reads as the trial's ``failure_reason``; the process exits 1.
- **Fidelity**: ``fidelity_levels`` is the one rule for how many levels a weight-sharing trial reports.
"""
from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from collections.abc import Callable
from typing import Any

_IMPORTED_AT = time.time()
FAILURE_PREFIX = "syne-prune trial failed: "
OBJECTIVES = ("error", "params", "macs", "latency")


def fidelity_levels(requested: int, validation_examples: int) -> int:
    """The fidelity levels a weight-sharing trial reports: one per validation chunk, so at most one per
    validation example (and at least 1). The one rule the search (MO-ASHA's ``max_t``, the Pareto set's
    full fidelity) and its trials (``Evaluator``) both apply."""
    return max(1, min(requested, validation_examples))


def failure_line(error: BaseException | str) -> str:
    """The one line a failed trial leaves in its ``std.err``: the Tuner's ledger reads the reason from it."""
    if isinstance(error, str):
        return f"{FAILURE_PREFIX}{error}"
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return f"{FAILURE_PREFIX}{type(error).__name__}: {reason}"


def run_trial(trial: Callable[[], None]) -> int:
    """Run a trial process's body: exit code 0 when it returns; when it raises anything, 1 with
    ``failure_line(error)`` as the last line on stderr (every failure becomes a failed trial with its reason)."""
    try:
        trial()
        return 0
    except Exception as error:  # noqa: BLE001 - any failure becomes a failed trial with its reason
        print(failure_line(error), file=sys.stderr, flush=True)
        return 1


def process_start_time() -> float:
    """When this process started (before the interpreter loaded anything), from the OS."""
    try:
        import psutil  # optional: without it, the time this module was imported

        return psutil.Process().create_time()
    except ImportError:  # pragma: no cover
        return _IMPORTED_AT


_SPEC_WORD = "spec:"


def task_word(task: str | dict[str, Any]) -> str:
    """A task as one command-line word: a built-in name as it is, a resolved specification's JSON record
    (``syne_prune.data.task_record``) as ``spec:`` + URL-safe base64 of its JSON (``task_of_word`` reads it back)."""
    if isinstance(task, str):
        return task
    return _SPEC_WORD + base64.urlsafe_b64encode(json.dumps(task, separators=(",", ":"), sort_keys=True).encode()).decode()


def task_of_word(word: str) -> str | dict[str, Any]:
    """The task ``task_word`` wrote: a built-in name, or a specification's JSON record."""
    if not word.startswith(_SPEC_WORD):
        return word
    return json.loads(base64.urlsafe_b64decode(word[len(_SPEC_WORD):].encode()))


def parse_hyperparameters(argv: list[str], constants: tuple[str, ...]) -> tuple[dict[str, str], dict[str, str]]:
    """Split a trial's ``--key value`` command line into the search's constants and the configuration.
    Raises ValueError for a command line that is not ``--key value`` pairs."""
    parser = argparse.ArgumentParser(description="syne-prune trial (started by Syne Tune)")
    for name in constants:
        parser.add_argument(f"--{name}", default="")
    known, rest = parser.parse_known_args(argv)
    if len(rest) % 2 or not all(k.startswith("--") for k in rest[0::2]):
        raise ValueError(f"hyperparameters must come as --key value pairs, got {rest}")
    return vars(known), {k[2:]: v for k, v in zip(rest[0::2], rest[1::2])}
