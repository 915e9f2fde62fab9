"""What a search derives from its ledger trials.csv (owned, with search.json, summary.json and test_errors.csv, by
``syne_prune.artifacts``): pareto.csv, pareto.png, hypervolume.csv, and each part's wall-clock record.

trials.csv is the one ledger every output is derived from, however a part of the search ended (a part
killed with SIGKILL included): each row carries its ``part`` and ``finished_s`` (seconds from the start of
that part to the trial's finish), and each part's ``syne-tune/part-K/syne_prune_wallclock.json``
(``PartClock``) is rewritten while the part runs, so a killed part still tells how long it ran. Syne
Tune's own results file of a part (flushed every few seconds, so a killed part may lack its last trials)
is completed from the ledger (``complete_experiment_results``).

The Pareto set and its hypervolume: ``syne_prune.pareto``.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from syne_prune.errors import SynePruneError
from syne_prune.files import atomic_write, atomic_write_text
from syne_prune.pareto import hypervolume, non_dominated

PARETO_FILE, PLOT_FILE = "pareto.csv", "pareto.png"
HYPERVOLUME_FILE = "hypervolume.csv"
PART_FILE = "syne_prune_wallclock.json"  # in syne-tune/part-K: how long the part ran, its first trial id, the scheduler's cost
HEARTBEAT_S = 0.5  # a running part rewrites its PART_FILE this often: a killed part loses at most this much time
SYNE_TUNE_RESULTS = "results.csv.zip"  # Syne Tune 0.16's results file in each experiment folder (load_experiment reads it)


def plot_pareto(trials: pd.DataFrame, front: pd.DataFrame, unpruned_error: float | None, path: Path, title: str,
                unpruned_label: str = "unpruned super-network") -> None:
    import matplotlib  # heavy, and its backend must be chosen before pyplot is imported

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # slow to import; only when a plot is drawn

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
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120))
    finally:
        plt.close(fig)


class PartClock:
    """The wall-clock record of one part of a search, ``syne-tune/part-K/syne_prune_wallclock.json``:
    ``{"seconds", "first_trial_id", "finished", "scheduler"}``. Written when the part starts, rewritten
    (atomically) every ``HEARTBEAT_S`` seconds by a background thread and whenever ``beat`` is called, and a
    last time by ``stop``; a part killed with SIGKILL keeps the time it ran to within ``HEARTBEAT_S``.
    ``scheduler``: a dict of numbers (the scheduler's cost so far), read at each write."""

    def __init__(self, folder: Path, first_trial_id: int, scheduler: dict[str, float]) -> None:
        self.path = Path(folder) / PART_FILE
        self.first_trial_id, self.scheduler = first_trial_id, scheduler
        self._started = time.time()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="syne-prune-part-clock", daemon=True)

    def start(self) -> PartClock:
        self._started = time.time()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.beat()
        self._thread.start()
        return self

    def elapsed(self) -> float:
        """Seconds since the part started."""
        return time.time() - self._started

    def beat(self, finished: bool = False) -> None:
        with self._lock:
            record = {"seconds": self.elapsed(), "first_trial_id": self.first_trial_id, "finished": finished,
                      "scheduler": dict(self.scheduler)}
            atomic_write_text(self.path, json.dumps(record))

    def stop(self) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()
        self.beat(finished=True)

    def _run(self) -> None:
        while not self._done.wait(HEARTBEAT_S):
            try:
                self.beat()
            except SynePruneError:  # a failed write (disk full, ...): the search's next write reports it, in one line
                pass


def read_parts(experiments: Path, trials: pd.DataFrame) -> list[dict[str, Any]]:
    """Every part of a search, in order: ``{"part", "seconds", "first_trial_id", "scheduler"}``. A part's
    seconds are those its ``PartClock`` recorded, and never less than its last trial's ``finished_s`` in the
    ledger (a part killed between two heartbeats); likewise its scheduler's ``suggestions`` never fewer than
    its trials in the ledger."""
    numbers = {int(p.name.split("-")[1]) for p in Path(experiments).glob("part-*") if p.name.split("-")[1].isdigit()}
    if "part" in trials and len(trials):
        numbers |= {int(k) for k in trials["part"].dropna().unique()}
    parts = []
    for number in sorted(numbers):
        path = Path(experiments) / f"part-{number}" / PART_FILE
        record = json.loads(path.read_text()) if path.is_file() else {}
        mine = trials[trials["part"] == number] if "part" in trials and len(trials) else trials.iloc[0:0]
        last = float(mine["finished_s"].max()) if "finished_s" in mine and mine["finished_s"].notna().any() else 0.0
        scheduler = dict(record.get("scheduler", {}))
        if len(mine):  # each trial in the ledger was one suggestion, even those after the part's last heartbeat
            scheduler["suggestions"] = max(int(scheduler.get("suggestions", 0)), len(mine))
        parts.append({"part": number, "seconds": max(float(record.get("seconds", 0.0)), last),
                      "first_trial_id": record.get("first_trial_id"), "scheduler": scheduler})
    return parts


def search_seconds(parts: list[dict[str, Any]]) -> float:
    """Wall-clock seconds of a search: all its parts, killed ones included."""
    return float(sum(p["seconds"] for p in parts))


def hypervolume_over_time(trials: pd.DataFrame, parts: list[dict[str, Any]], objectives: list[str], max_fidelity: int) -> pd.DataFrame:
    """Hypervolume of the full-fidelity completed trials of the ledger, at the search wall-clock second
    each finished (a part's times start where the previous part ended). Its last value is the hypervolume
    of the Pareto set (``pareto_set``): both come from the same rows. Rows of a ledger from an earlier
    version (no ``part``/``finished_s``) count as part 0, finished at its end."""
    offsets, start = {}, 0.0
    for part in parts:
        offsets[part["part"]] = (start, part["seconds"])
        start += part["seconds"]
    done = trials[(trials["status"] == "completed") & (trials["fidelity"] >= max_fidelity)] if len(trials) else trials
    rows = []
    for row in done.to_dict("records"):
        part = int(row["part"]) if pd.notna(row.get("part")) else 0
        offset, length = offsets.get(part, (0.0, 0.0))
        finished = row.get("finished_s")
        rows.append((offset + (float(finished) if pd.notna(finished) else length), *(float(row[o]) for o in objectives)))
    rows.sort()
    curve, points = [], np.empty((0, len(objectives)))
    for t, *values in rows:
        points = np.vstack([points, values])
        points = points[non_dominated(points)]
        curve.append((t, hypervolume(points)))
    return pd.DataFrame(curve, columns=["wallclock_s", "hypervolume"])


_SYNE_TUNE_STATUS = {"completed": "Completed", "stopped": "Stopped", "failed": "Failed"}


def complete_experiment_results(experiments: Path, trials: pd.DataFrame, parts: list[dict[str, Any]], names: list[str],
                                metrics: list[str]) -> int:
    """Add to each part's Syne Tune results file (``part-K/results.csv.zip``) the ledger's trials of that
    part it lacks; returns how many rows were added. Syne Tune flushes that file every few seconds, so a
    part killed with SIGKILL may lack its last finished trials (or the whole file). Each added row is the
    trial's last report as the ledger holds it (``trial_id``: Syne Tune's id within the part; ``config_*``,
    ``metrics``, ``st_tuner_time`` = ``finished_s``, ``st_status``, ``st_decision``; and
    ``syne_prune_recovered`` = True); reports before the last (MO-ASHA's lower rungs) are not recovered.
    Trials that reported nothing (failed at start) are left out, as Syne Tune leaves them out."""
    added = 0
    for part in parts:
        if part["first_trial_id"] is None or "part" not in trials:
            continue  # a part of an earlier version: its ledger rows carry no part
        mine = trials[(trials["part"] == part["part"]) & trials["error"].notna()]
        path = Path(experiments) / f"part-{part['part']}" / SYNE_TUNE_RESULTS
        try:
            results = pd.read_csv(path) if path.is_file() else pd.DataFrame()
        except Exception:  # noqa: BLE001 - a file the kill cut mid-write: rebuilt from the ledger
            results = pd.DataFrame()
        have = set(results["trial_id"]) if "trial_id" in results else set()
        missing = mine[~(mine["trial_id"] - part["first_trial_id"]).isin(have)]
        if missing.empty:
            continue
        rows = pd.DataFrame({
            **{m: missing[m].to_numpy() for m in metrics if m in missing},
            "st_tuner_time": missing["finished_s"].to_numpy(),
            "st_decision": np.where(missing["status"] == "stopped", "STOP", "CONTINUE"),
            "st_status": missing["status"].map(_SYNE_TUNE_STATUS).to_numpy(),
            "trial_id": (missing["trial_id"] - part["first_trial_id"]).to_numpy(),
            **{f"config_{n}": missing[n].to_numpy() for n in names},
            "syne_prune_recovered": True,
        })
        table = pd.concat([results, rows], ignore_index=True)
        atomic_write(path, lambda tmp: table.to_csv(tmp, index=False, compression={"method": "zip", "archive_name": "results.csv"}))
        added += len(rows)
    return added
