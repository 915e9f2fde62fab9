"""The comparison of replayed searches: hypervolume over simulated time and over trials (mean and 95%
interval over seeds), average rank over time, final Pareto sets; CSV, PNG and a markdown table.

Hypervolume as in a search (``syne_prune.pareto``): the reported objectives, reference point 1.0
in each, only full-fidelity results. The 95% interval is mean ± t(0.975, n-1)·sd/√n over the n seeds
(Student's t; the mean alone with one seed). Ranks: at each time, the schedulers of one seed are ranked by
hypervolume (1 = largest, ties share the mean rank), then averaged over seeds.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from syne_prune.pareto import hypervolume, non_dominated, pareto_set

GRID_POINTS = 100
GAP_FLOOR = 1e-5  # the plot's log axis: gaps below it (the best runs at their end) are drawn at it
FILES = {"time": "hypervolume_over_time.csv", "trials": "hypervolume_over_trials.csv", "rank": "rank_over_time.csv",
         "final": "final.csv", "pareto": "pareto_sets.csv", "table": "report.md", "plot": "hypervolume.png"}


def hypervolume_trace(trials: pd.DataFrame, objectives: list[str], max_fidelity: int) -> pd.DataFrame:
    """Hypervolume after each finished trial, in order of simulated end time: columns trials (1..N), end_s, hypervolume."""
    ordered = trials.sort_values(["end_s", "trial_id"], kind="stable")
    points = np.empty((0, len(objectives)))
    rows = []
    for count, row in enumerate(ordered.to_dict("records"), start=1):
        if row["status"] == "completed" and row["fidelity"] >= max_fidelity:
            points = np.vstack([points, [row[o] for o in objectives]])
            points = points[non_dominated(points)]
        rows.append((count, row["end_s"], hypervolume(points) if len(points) else 0.0))
    return pd.DataFrame(rows, columns=["trials", "end_s", "hypervolume"])


def _step(trace: pd.DataFrame, key: str, grid: np.ndarray) -> np.ndarray:
    """The trace's hypervolume at each grid value (the last one reached by then; 0 before the first)."""
    if trace.empty:
        return np.zeros(len(grid))
    index = np.searchsorted(trace[key].to_numpy(dtype=float), grid, side="right") - 1
    values = trace["hypervolume"].to_numpy(dtype=float)
    return np.where(index >= 0, values[np.clip(index, 0, None)], 0.0)


def _interval(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and 95% Student-t interval over axis 0 (seeds)."""
    from scipy import stats  # slow to import; only for the report

    mean = values.mean(0)
    if len(values) < 2:
        return mean, mean, mean
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(0, ddof=1) / np.sqrt(len(values))
    return mean, mean - half, mean + half


def write_report(output: Path, runs: dict[tuple[str, int], pd.DataFrame], objectives: list[str], max_fidelity: dict[str, int],
                 surrogate: str, held_out: pd.DataFrame, horizon_s: float | None, budget: int | None, title: str) -> dict[str, Any]:
    """Write every report file into ``output``; returns per-scheduler final numbers for summary.json."""
    from scipy.stats import rankdata  # slow to import; only for the report

    schedulers = list(dict.fromkeys(s for s, _ in runs))
    seeds = sorted({seed for _, seed in runs})
    traces = {key: hypervolume_trace(trials, objectives, max_fidelity[key[0]]) for key, trials in runs.items()}
    horizon = horizon_s or max([t["end_s"].max() for t in traces.values() if len(t)] + [1e-9])
    time_grid = np.linspace(0.0, horizon, GRID_POINTS + 1)
    trial_grid = np.arange(1, (budget or max([len(t) for t in traces.values()] + [1])) + 1)
    over_time, over_trials, final, fronts = [], [], [], []
    by_time = {}
    for scheduler in schedulers:
        curves = np.array([_step(traces[(scheduler, s)], "end_s", time_grid) for s in seeds])
        by_time[scheduler] = curves
        for name, grid, values, frame in (("time_s", time_grid, curves, over_time),
                                          ("trials", trial_grid, np.array([_step(traces[(scheduler, s)], "trials", trial_grid) for s in seeds]), over_trials)):
            mean, low, high = _interval(values)
            frame += [{"scheduler": scheduler, name: g, "mean": m, "low": lo, "high": hi} for g, m, lo, hi in zip(grid, mean, low, high)]
        for seed in seeds:
            trials = runs[(scheduler, seed)]
            front = pareto_set(trials, objectives, max_fidelity[scheduler])
            fronts.append(front.assign(scheduler=scheduler, seed=seed))
            final.append({"scheduler": scheduler, "seed": seed, "hypervolume": curves[seeds.index(seed), -1], "trials": len(trials),
                          "pareto_size": len(front), "surrogate_share": float((trials["recorded"] == 0).mean()) if len(trials) else 0.0,
                          "simulated_s": float(trials["end_s"].max()) if len(trials) else 0.0})
    stacked = np.stack([by_time[s] for s in schedulers])  # schedulers x seeds x grid
    ranks = np.apply_along_axis(lambda column: rankdata(-column), 0, stacked).mean(1)  # average rank over seeds
    rank_rows = [{"scheduler": s, "time_s": t, "rank": ranks[i, j]} for i, s in enumerate(schedulers) for j, t in enumerate(time_grid)]
    frames = {"time": pd.DataFrame(over_time), "trials": pd.DataFrame(over_trials), "rank": pd.DataFrame(rank_rows),
              "final": pd.DataFrame(final), "pareto": pd.concat(fronts, ignore_index=True) if fronts else pd.DataFrame()}
    for key, frame in frames.items():
        frame.to_csv(output / FILES[key], index=False, float_format="%.10g")
    summary = _table(output, frames, schedulers, seeds, surrogate, held_out, title)
    _plot(output / FILES["plot"], frames, schedulers, title)
    return summary


def _table(output: Path, frames: dict[str, pd.DataFrame], schedulers: list[str], seeds: list[int], surrogate: str,
           held_out: pd.DataFrame, title: str) -> dict[str, Any]:
    final, rank = frames["final"], frames["rank"]
    lines = [f"# {title}", "", (f"{len(seeds)} seed(s) per scheduler; hypervolume (reference point 1.0) at the end of the budget, "
                                "mean [95% interval]; average rank over seeds at the end and averaged over simulated time."), "",
             "| scheduler | hypervolume | rank (end) | rank (mean over time) | trials | Pareto size | from surrogate |",
             "|---|---|---|---|---|---|---|"]
    summary = {}
    for scheduler in schedulers:
        rows = final[final["scheduler"] == scheduler]
        mean, low, high = _interval(rows["hypervolume"].to_numpy(dtype=float)[:, None])
        ranks = rank[rank["scheduler"] == scheduler]["rank"]
        summary[scheduler] = {"hypervolume": float(mean[0]), "interval": [float(low[0]), float(high[0])], "rank_end": float(ranks.iloc[-1]),
                              "rank_mean": float(ranks.mean()), "trials": float(rows["trials"].mean())}
        lines.append(f"| {scheduler} | {mean[0]:.4f} [{low[0]:.4f}, {high[0]:.4f}] | {ranks.iloc[-1]:.2f} | {ranks.mean():.2f} | "
                     f"{rows['trials'].mean():.1f} | {rows['pareto_size'].mean():.1f} | {100 * rows['surrogate_share'].mean():.0f}% |")
    lines += ["", f"Surrogate for unrecorded sub-networks: **{surrogate}**."]
    if len(held_out):
        lines += ["", ("Held-out error of the surrogate candidates (5-fold cross-validation over the recorded rows; "
                       "normalised = MAE / standard deviation of the target):"), "", "| target | surrogate | MAE | normalised |", "|---|---|---|---|"]
        lines += [f"| {r.target} | {r.surrogate} | {r.mae:.4g} | {r.normalised_mae:.3f} |" for r in held_out.itertuples()]
    (output / FILES["table"]).write_text("\n".join(lines) + "\n")
    return summary


def _plot(path: Path, frames: dict[str, pd.DataFrame], schedulers: list[str], title: str) -> None:
    import matplotlib  # slow to import; only when a plot is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # slow to import; only when a plot is drawn

    # hypervolumes differ in the third decimal once the front is found: plot the gap to the best final one on a log axis
    best = float(frames["final"]["hypervolume"].max()) if len(frames["final"]) else 0.0
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for scheduler in schedulers:
        for ax, key, x in ((axes[0], "time", "time_s"), (axes[1], "trials", "trials")):
            frame = frames[key][frames[key]["scheduler"] == scheduler]
            gap = [np.clip(best - frame[c].to_numpy(dtype=float), GAP_FLOOR, None) for c in ("mean", "high", "low")]
            line, = ax.plot(frame[x], gap[0], label=scheduler)
            ax.fill_between(frame[x], gap[1], gap[2], color=line.get_color(), alpha=0.2)
            ax.set_yscale("log")
        rank = frames["rank"][frames["rank"]["scheduler"] == scheduler]
        axes[2].plot(rank["time_s"], rank["rank"], label=scheduler)
    gap_label = f"best final hypervolume ({best:.4f}) − hypervolume"
    for ax, label, ylabel in zip(axes, ("simulated seconds", "trials", "simulated seconds"), (gap_label, gap_label, "average rank")):
        ax.set_xlabel(label)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[2].invert_yaxis()
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
