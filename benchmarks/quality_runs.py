"""Reuse of ``benchmarks/quality.py`` runs in ``benchmarks/baselines_vs_search.py --from-quality DIR``.

``quality.py --workdir DIR`` leaves, per task and seed, ``DIR/<task>-seed<k>/`` with ``reference-lr<LR>/`` (the
full model fine-tuned with ``--strategy standard``, one per learning rate of its grid), ``supernet-teacher/`` (the
super-network trained against the best of those references as a fixed teacher) and ``search-teacher/`` (the
weight-sharing search on it). Those are exactly the ``finetuned`` and ``ws-nas`` steps of the baselines benchmark
with the final recipe, so they are linked (symlinks, read in place; nothing in DIR is written) instead of trained
anew:

- ``finetuned`` -> the reference the teacher row used: ``supernet-teacher/supernet.json``'s ``teacher.path``;
- ``supernet`` -> ``supernet-teacher``, ``ws-nas`` -> ``search-teacher``.

A run is used only when it is finished (both checkpoints' ``supernet.json`` without ``.resume``; the search's
``summary.json``, ``trials.csv`` and ``hypervolume.csv``) and matches: the reference was fine-tuned from the
benchmark's model (its ``supernet.json`` ``model`` equals the scale's model name; ``initialised_from`` is the
local path of the installed weights, so it is not compared) with strategy standard, the super-network was
initialised from that same reference, and task and seed agree in all three. Otherwise the reason is logged and the
steps run as before.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from syne_prune.artifacts import SearchDir, SupernetDir
from syne_prune.errors import SynePruneError

RESUME_DIR = ".resume"  # syne_prune.training.RESUME_DIR: an interrupted checkpoint
SEARCH_FILES = ("summary.json", "trials.csv", "hypervolume.csv")


class NotUsable(Exception):
    """Why a quality run cannot stand in for the benchmark's steps (logged; the steps then run as before)."""


@dataclass(frozen=True)
class QualityRun:
    """One finished ``quality.py`` (task, seed) run: its directories and recorded times (seconds).

    ``reference_s`` and ``supernet_s`` are the checkpoints' ``train_time_s`` (the training epochs), ``search_s`` the
    search's ``summary.json`` ``wallclock_s``: the same counters the benchmark reads for its own steps."""

    reference: Path
    supernet: Path
    search: Path
    reference_s: float
    supernet_s: float
    search_s: float

    def links(self) -> dict[str, Path]:
        """Work-directory entry -> the quality run's directory it stands for."""
        return {"finetuned": self.reference, "supernet": self.supernet, "ws-nas": self.search}


def _metadata(directory: Path) -> dict:
    """A finished checkpoint's supernet.json; NotUsable when it is missing, interrupted or unreadable."""
    path = directory / "supernet.json"
    if not path.is_file() or (directory / RESUME_DIR).exists():
        raise NotUsable(f"{directory} is not a finished checkpoint")
    try:
        return SupernetDir(directory).read()
    except (OSError, ValueError, SynePruneError) as error:
        raise NotUsable(f"{path} is unreadable ({error})") from error


def _check(condition: bool, reason: str) -> None:
    if not condition:
        raise NotUsable(reason)


def find_quality_run(directory: Path, model: str, task: str, seed: int) -> QualityRun:
    """The finished, matching quality run of (``task``, ``seed``) in a ``quality.py --workdir`` ``directory`` for
    ``model`` (a hub name such as ``sentence-transformers/all-MiniLM-L6-v2``); NotUsable (with the reason) otherwise."""
    run = Path(directory) / f"{task}-seed{seed}"
    _check(run.is_dir(), f"no directory {run}")
    supernet, search = run / "supernet-teacher", run / "search-teacher"
    trained = _metadata(supernet)
    teacher = (trained.get("teacher") or {}).get("path")
    _check(bool(teacher), f"{supernet} was trained without a fixed teacher")
    reference = Path(teacher)
    _check(reference.is_dir(), f"the teacher {teacher} of {supernet} is not there (the quality workdir moved?)")
    fine_tuned = _metadata(reference)
    _check(fine_tuned.get("model") == model, f"{reference} was fine-tuned from {fine_tuned.get('model')}, not {model}")
    _check(fine_tuned.get("strategy") == "standard", f"{reference} was trained with strategy {fine_tuned.get('strategy')}, not standard")
    _check(Path(trained.get("initialised_from", "")).resolve() == reference.resolve(), f"{supernet} did not start from its teacher {reference}")
    missing = [name for name in SEARCH_FILES if not (search / name).is_file()]
    _check(not missing, f"{search} is unfinished (no {', '.join(missing)})")
    summary = SearchDir(search).read_summary()
    _check(Path(summary.get("supernet", "")).resolve() == supernet.resolve(), f"{search} searched {summary.get('supernet')}, not {supernet}")
    for name, record in ((reference, fine_tuned), (supernet, trained), (search, summary)):
        _check((record.get("task"), record.get("seed")) == (task, seed),
               f"{name} is for task {record.get('task')} seed {record.get('seed')}, not {task} seed {seed}")
    return QualityRun(reference, supernet, search, float(fine_tuned["train_time_s"]), float(trained["train_time_s"]),
                      float(summary.get("wallclock_s") or 0.0))


def link_quality_run(directory: Path, model: str, task: str, seed: int, work: Path) -> QualityRun | None:
    """Link ``work/finetuned`` and ``work/supernet`` + ``work/ws-nas`` to the quality run of (``task``, ``seed``) and
    log what was done; None (logged: the steps run as before) when there is no usable run. An entry the work
    directory already has (a fresh run) is kept; ``supernet`` and ``ws-nas`` are linked together or not at all."""
    try:
        run = find_quality_run(directory, model, task, seed)
    except NotUsable as reason:
        print(f"  no usable quality run for {task} seed {seed} ({reason}): finetuned and ws-nas run as before", flush=True)
        return None
    links, linked = run.links(), []
    for group in (("finetuned",), ("supernet", "ws-nas")):
        wanted = {name: links[name].resolve() for name in group}
        if all((work / name).is_symlink() and (work / name).resolve() == target for name, target in wanted.items()):
            linked += group
            continue
        present = [name for name in group if (work / name).exists() or (work / name).is_symlink()]
        if present:
            print(f"  {', '.join(str(work / name) for name in present)} already there: kept, the quality run's {' and '.join(group)} not used",
                  flush=True)
            continue
        work.mkdir(parents=True, exist_ok=True)
        for name, target in wanted.items():
            os.symlink(target, work / name, target_is_directory=True)
        linked += group
    seconds = {"finetuned": run.reference_s, "supernet": run.supernet_s, "ws-nas": run.search_s}
    if linked:
        print("  from the quality run: " + ", ".join(f"{name} = {links[name]} ({seconds[name]:.0f} s)" for name in linked), flush=True)
    return run
