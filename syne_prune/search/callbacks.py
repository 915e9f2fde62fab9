"""What the search adds to Syne Tune's Tuner: the ledger (``trials.csv``, one row per finished trial) and a
Tuner that sleeps on the backend."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from syne_tune import Tuner
from syne_tune.backend.trial_status import Status
from syne_tune.optimizer.scheduler import SchedulerDecision
from syne_tune.tuner_callback import TunerCallback

from syne_prune.numerics import non_finite_items
from syne_prune.search import results as R
from syne_prune.search.backends import SearchBackend
from syne_prune.search.config import SearchConfig
from syne_prune.search.protocol import FAILURE_PREFIX
from syne_prune.search.schedulers import FIDELITY_ATTR


class SearchTuner(Tuner):
    """Syne Tune's Tuner, sleeping on the search backend's ``wait`` (the pool: until a worker reports; the
    others: the full ``sleep_time``). ``search_backend``: the ``SearchBackend`` whose trials it runs."""

    def __init__(self, search_backend: SearchBackend, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.search_backend = search_backend

    def _sleep(self) -> None:
        self.search_backend.wait(self.sleep_time)
        for callback in self.callbacks:
            callback.on_tuning_sleep(self.sleep_time)


class LedgerCallback(TunerCallback):
    """Writes one trials.csv row per trial the moment it finishes (completed, stopped or failed), with its
    ``part`` and ``finished_s`` (seconds from the part's start, by its ``R.PartClock``), and has the clock
    record the part's time at once (a kill right after loses none of it). ``backend``: the ``SearchBackend``
    (a failed trial's reason, a trial's checkpoint)."""

    def __init__(self, ledger, backend, names, config: SearchConfig, first_trial_id: int, bar, part: int,
                 clock: R.PartClock) -> None:
        self.ledger, self.backend, self.names, self.config = ledger, backend, names, config
        self.offset, self.bar = first_trial_id, bar
        self.part, self.clock = part, clock
        self.last: dict[int, dict] = {}
        self.written: set[int] = set()

    def _write(self, trial, status: str, result: dict | None, reason: str = "") -> None:
        if trial.trial_id in self.written:
            return
        self.written.add(trial.trial_id)
        result = result or {}
        if status in ("completed", "stopped") and result.get(FIDELITY_ATTR, 0) >= self.config.max_fidelity:
            status = "completed"  # MO-ASHA stops trials at the top rung too
        bad = non_finite_items(result, self.config.objectives)
        if bad:  # reported by an entry point that does not check (the trial code refuses to report these)
            status, reason = "failed", f"non-finite objective(s) {', '.join(bad)}"
        row = {"trial_id": self.offset + trial.trial_id, "status": status,
               **{n: trial.config[n] for n in self.names}, **result,
               "wall_time_s": (datetime.now() - trial.creation_time).total_seconds(), "failure_reason": reason,
               "part": self.part, "finished_s": self.clock.elapsed()}
        if self.config.kind.trains_per_trial:  # where the trial's own weights are (export reads them)
            row["checkpoint"] = self.backend.checkpoint(trial.trial_id)
        self.ledger.append(row)
        self.clock.beat()
        if self.bar is not None:
            self.bar.update(1)

    def on_trial_result(self, trial, status, result, decision) -> None:
        self.last[trial.trial_id] = result
        if decision == SchedulerDecision.STOP:
            self._write(trial, "stopped", result)

    def on_trial_complete(self, trial, result) -> None:
        self._write(trial, "completed", result)

    def on_fetch_status_results(self, trial_status_dict, new_results) -> None:
        for trial_id, result in new_results:
            self.last[trial_id] = result
        for trial_id, (trial, status) in trial_status_dict.items():
            if status in (Status.failed, Status.stopped) and trial_id not in self.written:
                self._write(trial, "failed" if status == Status.failed else "stopped", self.last.get(trial_id), self._reason(trial_id))

    def _reason(self, trial_id: int) -> str:
        try:
            lines = [line.strip() for line in self.backend.stderr(trial_id) if line.strip()]
        except OSError:
            return "unknown (no std.err)"
        marked = [line[len(FAILURE_PREFIX):] for line in lines if line.startswith(FAILURE_PREFIX)]
        return (marked or lines or ["unknown"])[-1][:500]
