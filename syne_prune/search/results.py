"""What a search leaves behind: trials.csv (appended as trials finish), pareto.csv, pareto.png, summary.json
and, when only the Pareto set is scored on the test split, test_errors.csv (appended as each is scored).

Hypervolume: objectives are the reported values (error = 1 - metric; params and macs are ratios to
the full model, latency included), the
reference point is 1.0 in every objective (the unpruned model's size, an error of 1), and points
beyond it contribute nothing. Only trials evaluated at full fidelity enter the Pareto set.
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from syne_prune.search.searchers import non_dominated

TRIALS_FILE, PARETO_FILE, PLOT_FILE, SUMMARY_FILE = "trials.csv", "pareto.csv", "pareto.png", "summary.json"
HYPERVOLUME_FILE = "hypervolume.csv"
TEST_ERRORS_FILE = "test_errors.csv"  # trial_id,test_error of the trials scored on the test split after the search
REFERENCE_POINT = 1.0


class TrialLedger:
    """trials.csv, one row per finished trial, flushed to disk as each arrives (a crash loses nothing)."""

    def __init__(self, path: Path, columns: list[str]) -> None:
        self.path = path
        self.columns = columns
        if not path.exists():
            with open(path, "w", newline="") as handle:
                csv.writer(handle).writerow(columns)

    def append(self, row: dict[str, Any]) -> None:
        with open(self.path, "a", newline="") as handle:
            csv.DictWriter(handle, self.columns, extrasaction="ignore").writerow(row)
            handle.flush()
            os.fsync(handle.fileno())

    def read(self) -> pd.DataFrame:
        return read_trials(self.path) if self.path.exists() else pd.DataFrame(columns=self.columns)


def read_trials(path: Path) -> pd.DataFrame:
    """trials.csv with the test errors scored after the search (test_errors.csv beside it) filled in."""
    trials = pd.read_csv(path)
    scored_path = Path(path).parent / TEST_ERRORS_FILE
    if scored_path.exists() and len(trials) and "test_error" in trials:
        scored = pd.read_csv(scored_path).drop_duplicates("trial_id", keep="last").set_index("trial_id")["test_error"]
        trials["test_error"] = trials["test_error"].astype(float).fillna(trials["trial_id"].map(scored))
    return trials


def append_test_error(directory: Path, trial_id: int, test_error: float) -> None:
    """One scored trial, flushed at once (an interrupted scoring keeps what it has and resumes from there)."""
    path = Path(directory) / TEST_ERRORS_FILE
    new = not path.exists()
    with open(path, "a", newline="") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(["trial_id", "test_error"])
        writer.writerow([trial_id, repr(float(test_error))])
        handle.flush()
        os.fsync(handle.fileno())


def pareto_set(trials: pd.DataFrame, objectives: list[str], max_fidelity: int) -> pd.DataFrame:
    done = trials[(trials["status"] == "completed") & (trials["fidelity"] >= max_fidelity)]
    if done.empty:
        return done
    front = done[non_dominated(done[objectives].to_numpy(dtype=float))]
    return front.sort_values(objectives[1:] + objectives[:1] if len(objectives) > 1 else objectives)


def hypervolume(points: np.ndarray, reference: float = REFERENCE_POINT) -> float:
    """Hypervolume (pymoo) of ``points`` (rows, minimised) up to ``reference`` in every objective; rows
    beyond the reference or with a NaN or inf entry add nothing (such trials are recorded as failed)."""
    from pymoo.indicators.hv import HV

    inside = points[np.isfinite(points).all(1) & (points < reference).all(1)] if len(points) else points
    if len(inside) == 0:
        return 0.0
    return float(HV(ref_point=np.full(points.shape[1], reference))(inside))


def plot_pareto(trials: pd.DataFrame, front: pd.DataFrame, unpruned_error: float | None, path: Path, title: str,
                unpruned_label: str = "unpruned super-network") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = trials[trials["status"] == "completed"]
    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.scatter(done["params"], done["error"], s=14, color="0.65", label="sub-networks (validation)")
    if not front.empty:
        ordered = front.sort_values("params")
        ax.step(ordered["params"], ordered["error"], where="post", color="tab:red", linewidth=1.2)
        ax.scatter(ordered["params"], ordered["error"], s=30, color="tab:red", zorder=3, label="Pareto set")
    if unpruned_error is not None:
        ax.scatter([1.0], [unpruned_error], marker="*", s=160, color="black", zorder=4, label=unpruned_label)
    ax.set_xlabel("parameters (ratio to the unpruned model)")
    ax.set_ylabel("validation error (1 - metric)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def hypervolume_over_time(experiments: Path, objectives: list[str], max_fidelity: int) -> pd.DataFrame:
    """Hypervolume of the full-fidelity results reported so far, at each time one arrives.

    Read from Syne Tune's own results of every part of the search (``part-K/results.csv.zip``); the
    time axis is the search's wall-clock, a resumed part starting where the previous one ended.
    """
    rows, offset = [], 0.0
    for part in sorted(experiments.glob("part-*"), key=lambda p: int(p.name.split("-")[1])):
        results = part / "results.csv.zip"
        if results.is_file():
            frame = pd.read_csv(results)
            if "fidelity" in frame and set(objectives) <= set(frame.columns):
                frame = frame[frame["fidelity"] >= max_fidelity]
                rows += [(offset + t, *values) for t, *values in frame[["st_tuner_time", *objectives]].itertuples(index=False)]
        wallclock = part / "syne_prune_wallclock.json"
        offset += json.loads(wallclock.read_text())["seconds"] if wallclock.is_file() else 0.0
    rows.sort()
    curve, points = [], np.empty((0, len(objectives)))
    for t, *values in rows:
        points = np.vstack([points, values])
        points = points[non_dominated(points)]
        curve.append((t, hypervolume(points)))
    return pd.DataFrame(curve, columns=["wallclock_s", "hypervolume"])


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(summary, indent=2, default=float) + "\n")
    tmp.replace(path)
