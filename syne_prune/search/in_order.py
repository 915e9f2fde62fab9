"""Reproducible searches with several workers: results reach the scheduler in trial order.

With W asynchronous workers, which results a scheduler has seen when it makes its k-th suggestion depends on
which trial happened to finish first, so the same seed gives different ``trials.csv`` files from run to run.
The reproducible mode removes both sources of that:

1. the Tuner schedules synchronously (Syne Tune's ``asynchronous_scheduling=False``): it waits until every
   worker is free, then starts W trials at once, so the k-th suggestion always follows the results of the same
   earlier trials;
2. ``InOrderScheduler`` holds back every result, completion and error and hands them to the wrapped scheduler
   sorted by trial id just before the next suggestion (and when the search ends), so the scheduler's state no
   longer depends on the order in which the workers finished.

The cost is idle workers: a batch lasts as long as its slowest trial (measured in BENCHMARKS.md). Stopping
schedulers (MO-ASHA) decide on each result as it arrives, so they cannot wait for the order; the mode
refuses them with more than one worker (one worker is reproducible already).
"""
from __future__ import annotations

from syne_tune.backend.trial_status import Trial
from syne_tune.optimizer.scheduler import SchedulerDecision, TrialScheduler, TrialSuggestion

_EVENT_ORDER = {"result": 0, "complete": 1, "error": 2}  # a trial's own events keep their order


class InOrderScheduler(TrialScheduler):
    """Wraps a single-fidelity Syne Tune scheduler; hands it the held-back events of finished trials sorted
    by (trial id, event), before each ``suggest`` and on ``flush``.

    ``on_trial_result`` answers ``CONTINUE`` (the wrapped scheduler has not seen the result yet), which is
    right for a scheduler that never stops trials early; use it only with synchronous scheduling."""

    def __init__(self, scheduler: TrialScheduler) -> None:
        super().__init__(random_seed=0)
        self._scheduler = scheduler
        self._held: list[tuple[int, int, int, str, Trial, dict | None]] = []

    def _hold(self, kind: str, trial: Trial, result: dict | None) -> None:
        self._held.append((trial.trial_id, _EVENT_ORDER[kind], len(self._held), kind, trial, result))

    def flush(self) -> None:
        """Hands every held-back event to the wrapped scheduler, in trial order."""
        held, self._held = sorted(self._held, key=lambda event: event[:3]), []
        for _, _, _, kind, trial, result in held:
            if kind == "result":
                self._scheduler.on_trial_result(trial, result)
            elif kind == "complete":
                self._scheduler.on_trial_complete(trial, result)
            else:
                self._scheduler.on_trial_error(trial)

    def suggest(self) -> TrialSuggestion | None:
        self.flush()
        return self._scheduler.suggest()

    def on_trial_add(self, trial: Trial) -> None:
        self._scheduler.on_trial_add(trial)

    def on_trial_result(self, trial: Trial, result: dict) -> str:
        self._hold("result", trial, result)
        return SchedulerDecision.CONTINUE

    def on_trial_complete(self, trial: Trial, result: dict) -> None:
        self._hold("complete", trial, result)

    def on_trial_error(self, trial: Trial) -> None:
        self._hold("error", trial, None)

    def on_trial_remove(self, trial: Trial) -> None:
        self._scheduler.on_trial_remove(trial)

    def metric_names(self) -> list[str]:
        return self._scheduler.metric_names()

    def metric_mode(self):
        return self._scheduler.metric_mode()

    def metadata(self) -> dict:
        return self._scheduler.metadata()

    def __getattr__(self, name: str):  # stats, searcher, ...: the wrapped scheduler's
        if name.startswith("__") or name == "_scheduler":
            raise AttributeError(name)
        return getattr(self._scheduler, name)
