"""The read side of ``baselines_vs_search.py``: each method's sub-networks, their best-on-validation rows below the
thresholds, and hypervolume over wall-clock, from what its work directory holds (see that script's text).

Methods: ``ws-nas`` (the weight-sharing search with its ``--scheduler``), ``ws-nas-<scheduler>`` (a weight-sharing
search with that scheduler on the same super-network), ``standard-nas``, and the baselines ``rfp``, ``layer-drop``,
``head-prune``. Their names in the CSV files are the paper's: ``nas``, ``standard_nas``, ``rfp``, ``ld``, ``hp``, and
for a scheduler the name of the paper's ``data_relative_to_model_size_ws_nas.csv`` (``random_search``, ...).
"""
from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from baselines_report import COLUMNS, TABLE_THRESHOLDS, constant_error
from scales import short_name

from syne_prune.artifacts import SearchDir, SupernetDir
from syne_prune.search import SCHEDULERS

PAPER_NAMES = {"ws-nas": "nas", "standard-nas": "standard_nas", "rfp": "rfp", "layer-drop": "ld", "head-prune": "hp"}
BASELINES = ("rfp", "layer-drop", "head-prune")
SCHEDULER_PAPER_NAMES = {"random": "random_search", "local_search": "local_search", "nsga2": "nsga2", "ehvi": "ehvi",
                         "moasha": "moasha", "morea": "morea"}  # as the paper's ws_nas / standard_nas tables name them
WS_NAS_SCHEDULERS = {f"ws-nas-{name}": name for name in SCHEDULERS}  # method -> scheduler, on ws-nas's super-network
METHODS = [*PAPER_NAMES, *WS_NAS_SCHEDULERS]


def paper_name(method: str) -> str:
    """The method column of the CSV files: the paper's name of a method, or of a ``ws-nas-<scheduler>``'s scheduler."""
    return PAPER_NAMES.get(method) or SCHEDULER_PAPER_NAMES[WS_NAS_SCHEDULERS[method]]


def is_weight_sharing(method: str) -> bool:
    """ws-nas or a ws-nas-<scheduler>: a search over the super-network of ``supernet/``."""
    return method == "ws-nas" or method in WS_NAS_SCHEDULERS


def searched_by(search: Path) -> str | None:
    """The scheduler of a finished search (its summary.json), None while there is none."""
    summary = search / "summary.json"
    return SearchDir(search).read_summary().get("scheduler") if summary.is_file() else None


def supernet_time(supernet: Path) -> float:
    """Seconds until a super-network exists: its training epochs (``train_time_s``) plus, when it was trained against a
    fixed teacher whose checkpoint is still there (``teacher.path``: ``--teacher auto`` or a directory), the
    teacher's fine-tuning (its ``train_time_s``)."""
    metadata = SupernetDir(supernet).read()
    teacher = SupernetDir((metadata.get("teacher") or {}).get("path") or supernet / "no-teacher")
    return float(metadata["train_time_s"]) + (float(teacher.read()["train_time_s"]) if teacher.is_complete() else 0.0)


def full_size(work: Path):
    """``objectives.subnet_size`` of the unpruned model of ``work`` (its fine-tuned model, else its super-network);
    loaded once per directory."""
    return _full_size(str(work.resolve()))


@functools.lru_cache(maxsize=None)
def _full_size(work: str):
    from syne_prune.models import load_model
    from syne_prune.objectives import subnet_size

    model_dir = Path(work) / "finetuned" if (Path(work) / "finetuned" / "config.json").is_file() else Path(work) / "supernet"
    return subnet_size(load_model(str(model_dir)))


def candidates(work: Path, method: str) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """A method's sub-networks of ``work``: rows of valid_error, test_error, prunable (share of the prunable encoder
    parameters), time_s (wall-clock seconds when each became available, see the module text); its hypervolume
    curve (runtime, hv) of (validation error, prunable share) with reference point 1; and its runtime."""
    if method in BASELINES:
        frame = pd.read_csv(work / method / "results.csv").rename(columns={"encoder_params_ratio": "prunable"})
        start = SupernetDir(work / "finetuned").read()["train_time_s"]
        frame["time_s"] = start + (frame["prune_time_s"] + frame["finetune_time_s"]).cumsum()
        frame = frame[["valid_error", "test_error", "prunable", "time_s"]]
        return frame, running_hypervolume(frame), float(frame["time_s"].max())
    from syne_prune.artifacts import read_trials
    from syne_prune.search import hypervolume_over_time, read_parts

    trials = read_trials(work / method / "trials.csv")
    summary = SearchDir(work / method).read_summary()
    full = full_size(work)  # the search's params objective is a ratio of all parameters: the fixed part is kept whole
    trials["prunable"] = (trials["params"] * full.params - (full.params - full.encoder_params)) / full.encoder_params
    parts = read_parts(work / method / "syne-tune", trials)
    top = trials["fidelity"].max()
    offset = supernet_time(work / "supernet") if is_weight_sharing(method) else 0.0
    curve = hypervolume_over_time(trials.rename(columns={"error": "valid_error"}), parts, ["valid_error", "prunable"], top)
    curve = pd.DataFrame({"runtime": offset + curve["wallclock_s"], "hv": curve["hypervolume"]})
    done_ = trials[(trials["status"] == "completed") & (trials["fidelity"] >= top)]
    frame = done_.rename(columns={"error": "valid_error"})[["valid_error", "test_error", "prunable"]].assign(time_s=np.nan)
    return frame, curve, offset + float(summary.get("wallclock_s") or 0)


def best_below(frame: pd.DataFrame, thresholds: list[float]) -> list[tuple[float, float, float]]:
    """(threshold, test error, validation error) of the best-on-validation row with a prunable share <= threshold (ties:
    the smaller one, which is on the Pareto front and so scored on the test split); a threshold whose choice has no
    test error is left out and reported."""
    rows = []
    for threshold in thresholds:
        inside = frame[frame["prunable"] <= threshold + 1e-9].sort_values(["valid_error", "prunable"], kind="stable")
        if len(inside):
            best = inside.iloc[0]
            if pd.isna(best["test_error"]):
                print(f"  no test error for the best sub-network below {threshold:g}: left out", flush=True)
                continue
            rows.append((threshold, float(best["test_error"]), float(best["valid_error"])))
    return rows


def running_hypervolume(frame: pd.DataFrame) -> pd.DataFrame:
    """(runtime, hv) after each row of ``frame`` in time order: hypervolume of (valid_error, prunable), reference 1."""
    from syne_prune.pareto import hypervolume, non_dominated

    points, curve = np.empty((0, 2)), []
    for row in frame.sort_values("time_s", kind="stable").itertuples():
        points = np.vstack([points, [row.valid_error, row.prunable]])
        points = points[non_dominated(points)]
        curve.append((row.time_s, hypervolume(points)))
    return pd.DataFrame(curve, columns=["runtime", "hv"])


def reference_error(work: Path) -> tuple[float, float] | None:
    """(validation, test) error of the unpruned fine-tuned model of ``work``, as its training recorded them."""
    path = work / "finetuned" / "supernet.json"
    if not path.is_file():
        return None
    largest = SupernetDir(path.parent).read()["metrics"]["largest"]
    return float(largest["validation"]["error"]), float(largest["test"]["error"])


def swept_hypervolume(frame: pd.DataFrame, floor: float) -> float:
    """Hypervolume of (valid_error, prunable) with every prunable share below ``floor`` raised to it: the area a
    baseline's sweep down to ``floor`` can reach, so a search's sub-networks below it earn no extra credit."""
    return _front_hypervolume(np.column_stack([frame["valid_error"], np.maximum(frame["prunable"], floor)]))


def _front_hypervolume(points: np.ndarray) -> float:
    """Hypervolume (reference point 1 in every objective) of the non-dominated rows of ``points``; 0 for none."""
    from syne_prune.pareto import hypervolume, non_dominated

    return float(hypervolume(points[non_dominated(points)])) if len(points) else 0.0


def constant_validation_error(work: Path) -> float:
    """Validation error of the best constant answer, as the fine-tuned reference of ``work`` recorded it
    (``supernet.json``'s ``constant_answer``); NaN without that record (or one written before it was kept)."""
    path = work / "finetuned" / "supernet.json"
    record = (SupernetDir(path.parent).read().get("constant_answer") or {}) if path.is_file() else {}
    return float(record.get("validation", {}).get("error", np.nan))


def gain_hypervolume(frame: pd.DataFrame, constant: float) -> float:
    """Hypervolume of (valid_error / ``constant``, prunable), reference point (1, 1): only what a sub-network gains
    over answering the best constant everywhere counts. Where a constant scores high (MRPC's F1: a constant's
    validation error is ~0.185, not 1), the plain hypervolume credits the empty encoder with ~0.815 of its 1.0, more
    than any real gain can add; with a constant scoring 0 (STS-B's Spearman: error 1) the two are equal. NaN when the
    constant is not known."""
    if not np.isfinite(constant) or constant <= 0:
        return float("nan")
    return _front_hypervolume(np.column_stack([frame["valid_error"] / constant, frame["prunable"]]))


class Collected(NamedTuple):
    """What ``collect`` read. ``sizes``: the threshold rows (COLUMNS) of the paper's methods (nas, standard_nas, rfp, ld,
    hp); ``by_scheduler``: those of every weight-sharing search under its scheduler's name (ws-nas's too), as the
    paper's ``data_relative_to_model_size_ws_nas.csv``; ``hypervolume``: the curves (method, model, dataset, seed,
    runtime, hv); ``finals``: the last hypervolume, of the whole front, of the swept range and over the constant
    answer (``gain_hypervolume``), with the runtime;
    ``references``: the unpruned models (the paper's ``data_unpruned_model.csv`` columns and ``constant_error``)."""

    sizes: pd.DataFrame
    by_scheduler: pd.DataFrame
    hypervolume: pd.DataFrame
    finals: pd.DataFrame
    references: pd.DataFrame


# Collected's field -> (file in --out-dir, written with the pandas index as the paper's files are, the key of one run)
RESULT_FILES = {
    "sizes": ("relative_to_model_size.csv", True, ["method", "model", "dataset", "seed"]),
    "by_scheduler": ("relative_to_model_size_ws_nas.csv", True, ["method", "model", "dataset", "seed"]),
    "hypervolume": ("hypervolume.csv", False, ["method", "model", "dataset", "seed"]),
    "finals": ("hypervolume_final.csv", False, ["method", "model", "dataset", "seed"]),
    "references": ("unpruned_model.csv", True, ["model", "dataset", "seed"]),
}


def write_results(found: Collected, out: Path) -> None:
    """Write every table of ``found`` to its RESULT_FILES name in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    for field, (name, index, _) in RESULT_FILES.items():
        getattr(found, field).to_csv(out / name, index=index)


def merge_earlier(found: Collected, out: Path) -> Collected:
    """``found`` plus the rows of the result files already in ``out`` for every run (method, model, dataset, seed; a
    reference: model, dataset, seed) that ``found`` lacks, so results accumulate over runs whose work directories
    are gone: a run collected now replaces its own rows, a run not collected now is kept. A reference
    collected now whose test error differs from the earlier one's is reported (the kept rows of other methods of that
    seed were measured beside the earlier reference). Exits with a one-line message (code 2) when a file in ``out`` is
    not one of these results files."""
    merged = {}
    for field, (name, index, key) in RESULT_FILES.items():
        now = getattr(found, field)
        if not (out / name).is_file():
            merged[field] = now
            continue
        earlier = pd.read_csv(out / name, index_col=0 if index else None)
        if missing := [column for column in [*key, *(["test_error"] if field == "references" else [])] if column not in earlier]:
            print(f"--merge: {out / name} has no column(s) {', '.join(missing)}: not a results file of this script; "
                  "choose another --out-dir or drop --merge", file=sys.stderr)
            raise SystemExit(2)
        if field == "references":
            _report_changed_references(now, earlier)
        collected = set(map(tuple, now[key].astype(str).values))
        keep = earlier.loc[np.array([tuple(row) not in collected for row in earlier[key].astype(str).values], dtype=bool)]
        both = pd.concat([now, keep], ignore_index=True) if len(now) else keep
        merged[field] = both.sort_values(key, kind="stable").reset_index(drop=True)
    return Collected(**merged)


def _report_changed_references(now: pd.DataFrame, earlier: pd.DataFrame) -> None:
    both = now.merge(earlier, on=["model", "dataset", "seed"], suffixes=("", "_earlier"))
    for row in both[~np.isclose(both["test_error"], both["test_error_earlier"], rtol=0, atol=1e-9)].itertuples():
        print(f"  the reference of {row.dataset} seed {row.seed} differs from the earlier results' (test error "
              f"{row.test_error:.4f}, earlier {row.test_error_earlier:.4f}): kept rows of other methods used the earlier one", flush=True)


def collect(args, models: list[str]) -> Collected:
    """Read every model/task/seed/method of ``args.workdir`` (a method not run yet is skipped)."""
    thresholds = sorted({float(t) for t in args.thresholds.split(",")} | set(TABLE_THRESHOLDS))
    size_rows, scheduler_rows, hv_rows, finals, references = [], [], [], [], []
    for model, task, seed in ((m, t, s) for m in models for t in args.tasks for s in args.seeds):
        key = [short_name(model), task, seed]
        work = Path(args.workdir) / short_name(model) / task / f"seed{seed}"
        if (reference := reference_error(work)) is not None:
            references.append([task, short_name(model), seed, *reference])
        for method in args.methods:
            if method in WS_NAS_SCHEDULERS and searched_by(work / "ws-nas") == WS_NAS_SCHEDULERS[method]:
                continue  # ws-nas is that search: counted once, as ws-nas
            try:
                frame, curve, runtime = candidates(work, method)
            except (FileNotFoundError, KeyError):
                continue  # not run (yet)
            rows = [[runtime, threshold, test_error, valid_error] for threshold, test_error, valid_error in best_below(frame, thresholds)]
            if method in PAPER_NAMES:
                size_rows += [[*row, PAPER_NAMES[method], *key] for row in rows]
            if is_weight_sharing(method):
                scheduler = searched_by(work / method)
                scheduler_rows += [[*row, SCHEDULER_PAPER_NAMES.get(scheduler, scheduler), *key] for row in rows]
            hv_rows += [[paper_name(method), *key, t, h] for t, h in zip(curve["runtime"], curve["hv"])]
            finals.append([paper_name(method), *key, runtime, float(curve["hv"].iloc[-1]) if len(curve) else 0.0,
                           swept_hypervolume(frame, min(TABLE_THRESHOLDS)), gain_hypervolume(frame, constant_validation_error(work))])
    references = pd.DataFrame(references, columns=["dataset", "model", "seed", "validation_error", "test_error"])
    references["constant_error"] = [constant_error(task, args.data_dir) for task in references["dataset"]]
    keys = ["method", "model", "dataset", "seed", "runtime"]
    return Collected(pd.DataFrame(size_rows, columns=COLUMNS), pd.DataFrame(scheduler_rows, columns=COLUMNS),
                     pd.DataFrame(hv_rows, columns=[*keys, "hv"]), pd.DataFrame(finals, columns=[*keys, "hv", "hv_swept", "hv_gain"]), references)
