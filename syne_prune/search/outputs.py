"""The outputs of a search: its folder (refused, emptied or resumed), search.json, and everything computed
from the ledger trials.csv once the Tuner stops (``finalize``): pareto.csv, pareto.png, hypervolume.csv,
summary.json and, with ``--test-split pareto``, the Pareto set's test errors."""
from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from syne_prune.artifacts import SEARCH_FILE, TRIALS_FILE, SearchDir, SearchRecord, append_test_error
from syne_prune.data import TaskSpec, check_unchanged, task_name
from syne_prune.errors import SynePruneError
from syne_prune.files import atomic_write, new_output
from syne_prune.pareto import REFERENCE_POINT, hypervolume, pareto_set
from syne_prune.search import results as R
from syne_prune.search.config import SearchConfig
from syne_prune.search.kinds import PreparedSearch
from syne_prune.search.schedulers import FIDELITY_ATTR
from syne_prune.search.trial import Evaluator
from syne_prune.training import check_compute
from syne_prune.versions import software_versions


def space_notice(space, config: SearchConfig, n_trials: int) -> str | None:
    """The one line (printed, and ``notice`` in summary.json) saying that the space has fewer sub-networks than
    the budget or that all of them were evaluated; None when neither. Every trial is a distinct sub-network
    (``NoRepeatScheduler``), so ``n_trials`` is how many of them were tried."""
    size = space.num_subnetworks()
    capped = config.max_trials is not None and config.max_trials > size
    if not capped and n_trials < size:
        return None
    cap = f" (--max-trials {config.max_trials} capped at {size})" if capped else ""
    return f"the {space.name} search space has {size} sub-networks: the search ends once every one is evaluated{cap}"


def ledger_columns(names: list[str], config: SearchConfig) -> list[str]:
    """The columns of trials.csv, in order: ids, the configuration (``names``), objectives, sizes, the trial
    kind's own columns, times, the failure reason and which part of the search ran the trial."""
    objectives = config.objectives
    extra = ["latency_ms"] if "latency" in objectives else []
    sizes = [o for o in ("params", "macs", "latency") if o not in objectives]
    return ["trial_id", "status", *names, *objectives, *sizes, *extra, "test_error", FIDELITY_ATTR, *config.kind.ledger_columns,
            "setup_s", "eval_s", "wall_time_s", "failure_reason", "part", "finished_s"]


def prepare_output(output: Path, config: SearchConfig, resume: bool, overwrite: bool, check_only: bool = False) -> None:
    """Refuse what would lose data; then (unless ``check_only``) create or empty the directory (its lock file, held
    by this process, kept: see ``files.output_lock``)."""
    if resume and overwrite:
        raise SynePruneError("--resume and --overwrite exclude each other; pick one")
    if resume:
        if not SearchDir(output).has_settings():
            raise SynePruneError(f"nothing to resume in '{output}' (no {SEARCH_FILE}); drop --resume to start a search")
        saved = SearchDir(output).read_settings().settings
        saved.setdefault("test_split", "every-trial")  # searches from before the option scored every trial
        mine = json.loads(json.dumps(resumable(config)))
        changed = sorted(k for k in mine if saved.get(k) != mine[k])
        if changed:
            raise SynePruneError(f"--resume with other settings than the interrupted search ({', '.join(changed)}); use the same ones")
        return
    new_output(output, overwrite, check_only)


def check_recorded_data(output: Path) -> None:
    """Before a resumed search prepares anything: the user's data files recorded in search.json are the ones the search
    ran on (``syne_prune.data.check_unchanged``: a changed or missing file is one line naming it and both sha256).
    Nothing to check without search.json or for a built-in task."""
    directory = SearchDir(output)
    if directory.has_settings():
        task = directory.read_settings().task
        if isinstance(task, dict):
            check_unchanged(TaskSpec.from_json(task))


def resumable(config: SearchConfig) -> dict[str, Any]:
    """The settings a resumed search must share with the search it continues (search.json's ``settings``)."""
    values = asdict(config)
    for key in ("output", "max_trials", "max_wallclock_s", "n_workers", "backend", "backend_settings"):  # free on resume
        values.pop(key)
    return values


def write_settings(output: Path, prepared: PreparedSearch, compute: dict[str, str] | None = None) -> None:
    """search.json: the settings (``resumable``), the kind of trial, super-network, space, task and what the trials
    compute in (``compute``: ``SearchBackend.compute_record``); resume and export read it."""
    config = prepared.config
    SearchDir(output).write_settings(SearchRecord(settings=resumable(config), trial_kind=config.trial_kind, supernet=_supernet(config),
                                                  search_space=prepared.space.name, task=prepared.task, compute=compute))


def check_resumed_compute(output: Path, compute: dict[str, str], objectives: Sequence[str]) -> None:
    """A resumed search computes as the interrupted one did (search.json's ``compute``; nothing to check in a search
    recorded before it was kept): another precision is a one-line ``SynePruneError`` (its errors would mix two
    arithmetics); another device is one too when latency is an objective (latencies of two devices do not compare),
    else a note on stderr."""
    saved = SearchDir(output).read_settings().compute
    if not saved:
        return
    if "latency" in objectives and saved["device"] != compute["device"]:
        raise SynePruneError(f"--resume on {compute['device']}, but the interrupted search measured latency on {saved['device']}; "
                             f"resume with --device {saved['device']}, or start again (--overwrite)")
    check_compute({"compute": saved}, compute["precision"], compute["device"], did="evaluated its trials")


def _supernet(config: SearchConfig) -> str | None:
    """The absolute path of the search's super-network (weight-sharing), None for a kind of trial without one."""
    supernet = getattr(config.trial_settings, "supernet", None)
    return str(Path(supernet).resolve()) if supernet else None


def score_pareto_on_test(output: Path, config: SearchConfig, evaluator: Callable[[], Evaluator], progress: bool = True) -> int:
    """With ``--test-split pareto``: the test-split error of each Pareto member not scored yet, computed here
    with the trial code (the super-network loaded once) and appended to test_errors.csv as it arrives.
    Returns how many were scored. The search never uses the test split, so only the networks a user
    would pick are scored; every trial is with ``--test-split every-trial``, at the cost of a second pass.
    ``evaluator``: a function returning the trials' Evaluator (``PreparedSearch.evaluator``)."""
    trials = SearchDir(output).trials()
    front = pareto_set(trials, list(config.objectives), config.max_fidelity)
    todo = front[front["test_error"].isna()] if len(front) else front
    if todo.empty:
        return 0
    evaluator = evaluator()
    if not evaluator.has_test:
        return 0  # a task without test data: no test error is reported, none invented
    names = list(evaluator.space.config_space)
    for _, row in tqdm(list(todo.iterrows()), desc="test split [Pareto set]", unit="network", disable=not progress):
        config_values = evaluator.space.validate({name: row[name] for name in names})
        append_test_error(output, int(row["trial_id"]), evaluator.test_error(config_values))
    return len(todo)


def finalize(output: Path, prepared: PreparedSearch, progress: bool = True) -> dict[str, Any]:
    """Every output of a search from its one ledger, trials.csv (also after a resume, and whatever ended
    each part: a part killed with SIGKILL included): pareto.csv, pareto.png, hypervolume.csv, summary.json,
    the Syne Tune results of each part (completed from the ledger), and first, with ``--test-split pareto``,
    the Pareto set's test errors. Returns the summary (summary.json)."""
    config, space, evaluator = prepared.config, prepared.space, prepared.evaluator
    if evaluator is not None and config.test_split == "pareto":
        score_pareto_on_test(output, config, evaluator, progress)
    trials = SearchDir(output).trials()
    if config.reproducible:  # rows were written as trials finished; the same seed gives the same file in trial order
        trials = trials.sort_values("trial_id", kind="stable").reset_index(drop=True)
        atomic_write(output / TRIALS_FILE, lambda tmp: trials.to_csv(tmp, index=False))
    objectives = list(config.objectives)
    front = pareto_set(trials, objectives, config.max_fidelity)
    atomic_write(output / R.PARETO_FILE, lambda tmp: front.to_csv(tmp, index=False))
    metric = prepared.metric
    unpruned = unpruned_errors(trials, space, config, evaluator)
    R.plot_pareto(trials, front, unpruned["error"], output / R.PLOT_FILE,
                  f"{task_name(prepared.task)} · {space.name} space · {config.scheduler} · {len(trials)} trials",
                  unpruned_label="unpruned (largest configuration)")
    names = list(space.config_space)
    parts = R.read_parts(output / "syne-tune", trials)
    R.complete_experiment_results(output / "syne-tune", trials, parts, names,
                                  [c for c in trials.columns if c not in set(names) | _NOT_METRICS])
    over_time = R.hypervolume_over_time(trials, parts, objectives, config.max_fidelity)
    atomic_write(output / R.HYPERVOLUME_FILE, lambda tmp: over_time.to_csv(tmp, index=False))
    cost = _scheduler_cost(parts)
    notice = space_notice(space, config, len(trials))
    if notice is None and cost["no_new_subnetwork"]:
        notice = f"the {config.scheduler} scheduler proposed no new sub-network after {len(trials)} trials: the search stopped early"
    if notice is not None and not (config.max_trials is not None and config.max_trials > space.num_subnetworks()):
        print(notice, file=sys.stderr, flush=True)  # a cap was announced when the search started
    summary = {
        "trial_kind": config.trial_kind,
        "scheduler": config.scheduler,
        "seed": config.seed,
        "objectives": objectives,
        "search_space": space.name,
        "search_space_subnetworks": space.num_subnetworks(),
        "notice": notice,
        "task": prepared.task,
        "metric": metric,
        "supernet": _supernet(config),
        "model": prepared.model,
        "hypervolume": hypervolume(front[objectives].to_numpy(dtype=float)) if len(front) else 0.0,
        "hypervolume_reference_point": [REFERENCE_POINT] * len(objectives),
        "hypervolume_normalisation": "none: error = 1 - metric; params, macs, latency are ratios to the unpruned model",
        "trials": {status: int((trials["status"] == status).sum()) for status in ("completed", "stopped", "failed")},
        "pareto_size": int(len(front)),
        "fidelity_levels": config.max_fidelity,
        "wallclock_s": R.search_seconds(parts),
        "parts": [{"part": p["part"], "seconds": p["seconds"]} for p in parts],
        "scheduler_cost": cost,
        "unpruned": unpruned,
        "hypervolume_over_time": f"{R.HYPERVOLUME_FILE}: hypervolume of the full-fidelity trials of {TRIALS_FILE} "
                                 "finished by each wall-clock second of the search",
        "versions": software_versions(),
    }
    SearchDir(output).write_summary(summary)
    return summary


_NOT_METRICS = {"trial_id", "status", "wall_time_s", "failure_reason", "part", "finished_s", "checkpoint"}


def _scheduler_cost(parts: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds the Tuner spent in the scheduler's suggest (all parts of a resumed search, killed ones up to
    their last heartbeat), how often a suggestion was turned down as a sub-network already tried, and how
    often no new sub-network was left or found."""
    total = {"suggest_s": 0.0, "suggestions": 0, "repeats_rejected": 0, "no_new_subnetwork": 0}
    for part in parts:
        for key, value in part["scheduler"].items():
            total[key] = total.get(key, 0) + value
    return total


def unpruned_errors(trials: pd.DataFrame, space, config: SearchConfig, evaluator=None) -> dict[str, Any]:
    """The unpruned network's validation and test errors, on this search's own splits, from one place: the
    trial of the largest configuration once it completed at full fidelity (weight-sharing: the super-network
    with nothing pruned, scored by the trials' Evaluator; standard NAS: the full model, fine-tuned). Without
    such a trial (budget spent, failed, stopped early by MO-ASHA), a weight-sharing search scores the largest
    configuration here with the same Evaluator (``evaluator``: a function returning it, ``PreparedSearch.evaluator``);
    so does it a test error the trial lacks (``--test-split pareto`` and not on the Pareto front).
    Returns ``{"error", "test_error", "trial_id"}`` (``error``: on the validation split, as in trials.csv; None where unknown; ``trial_id``
    None when scored here)."""
    largest = space.largest()
    names = list(space.config_space)
    done = trials[(trials["status"] == "completed") & (trials[FIDELITY_ATTR] >= config.max_fidelity)] if len(trials) else trials
    rows = done[(done[names] == pd.Series(largest)).all(axis=1)] if len(done) else done
    if len(rows):
        row = rows.iloc[0]
        test = row["test_error"]
        if pd.isna(test) and evaluator is not None:
            test = evaluator().test_error(largest)
        return {"error": float(row["error"]), "test_error": None if pd.isna(test) else float(test),
                "trial_id": int(row["trial_id"])}
    if evaluator is None:
        return {"error": None, "test_error": None, "trial_id": None}
    validation = evaluator().evaluate(largest, lambda result: None)["error"]
    test = evaluator().test_error(largest)
    return {"error": float(validation), "test_error": None if test is None else float(test), "trial_id": None}
