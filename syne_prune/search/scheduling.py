"""How the search hands out configurations: never the same sub-network twice (``NoRepeatScheduler`` around
any Syne Tune scheduler), within the budget (``trials_left``), and after a resume with the finished trials
told to a fresh scheduler first (``replay``)."""
from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from syne_tune.backend.trial_status import Trial
from syne_tune.optimizer.scheduler import SchedulerDecision, TrialScheduler

from syne_prune.numerics import non_finite_items
from syne_prune.search.schedulers import FIDELITY_ATTR, MULTI_FIDELITY

if TYPE_CHECKING:
    from syne_prune.search.config import SearchConfig


def subnetwork_key(space, config: dict[str, Any]) -> bytes:
    """Identity of the sub-network a configuration selects: configurations that differ only in values
    that select nothing (heads of a small-space network with 0 layers) are the same sub-network."""
    mask = space.to_mask(config)
    return mask.heads.numpy().tobytes() + mask.neurons.numpy().tobytes()


class NoRepeatScheduler(TrialScheduler):
    """Wraps a Syne Tune scheduler: never starts the same sub-network twice (finished ones included)
    and hands out at most ``budget`` suggestions, then reports the space exhausted so the Tuner waits
    for the running trials and ends with exactly that many.

    It never asks the scheduler in vain: once every sub-network of the space has been started it answers
    None at once; a scheduler that proposes only sub-networks already started is asked at most
    ``MAX_ASKS`` times per suggestion, then a new sub-network is drawn at random (from all those left, where
    the space is small enough to list). ``stats["no_new_subnetwork"]`` counts the times none was found."""

    MAX_ASKS = 10  # each ask can cost seconds (EHVI refits its GP)
    RANDOM_DRAWS = 1000  # cheap draws from the space before giving up, where it is too large to list
    MAX_LISTED = 4096  # spaces with at most this many configurations are listed to find the new sub-networks

    def __init__(self, scheduler: TrialScheduler, space, seen: set[bytes], budget: int | None) -> None:
        super().__init__(random_seed=0)
        self._scheduler, self._space, self._seen, self._budget = scheduler, space, seen, budget
        self._random = np.random.RandomState(len(seen))
        self._size = space.num_subnetworks()
        self.stats = {"suggest_s": 0.0, "suggestions": 0, "repeats_rejected": 0, "no_new_subnetwork": 0}  # the scheduler's own cost
        searcher = getattr(scheduler, "searcher", None)
        if hasattr(searcher, "is_new"):  # EHVI picks its best candidate among sub-networks not yet started
            searcher.is_new = lambda config: subnetwork_key(space, config) not in seen

    def suggest(self):
        started = time.perf_counter()
        try:
            return self._suggest()
        finally:
            self.stats["suggest_s"] += time.perf_counter() - started

    def _suggest(self):
        if self._budget is not None and self._budget <= 0:
            return None
        if len(self._seen) >= self._size:  # nothing new left: do not ask the scheduler
            self.stats["no_new_subnetwork"] += 1
            return None
        for _ in range(self.MAX_ASKS):
            suggestion = self._scheduler.suggest()
            if suggestion is None:
                self.stats["no_new_subnetwork"] += 1
                return None
            if suggestion.config is None or subnetwork_key(self._space, suggestion.config) not in self._seen:
                return self._accept(suggestion)
            self.stats["repeats_rejected"] += 1
        fresh = self._new_config()  # the scheduler keeps proposing sub-networks already started
        if fresh is None:
            self.stats["no_new_subnetwork"] += 1
            return None
        constants = {k: v for k, v in suggestion.config.items() if k not in self._space.config_space}
        suggestion.config = {**fresh, **constants}
        return self._accept(suggestion)

    def _accept(self, suggestion):
        if suggestion.config is not None:
            self._seen.add(subnetwork_key(self._space, suggestion.config))
        if self._budget is not None:
            self._budget -= 1
        self.stats["suggestions"] += 1
        return suggestion

    def _new_config(self) -> dict[str, int] | None:
        """A seeded random configuration of a sub-network not started yet, or None if none is found."""
        if self._space.num_configurations() <= self.MAX_LISTED:
            new = {}
            for config in self._space.configurations():
                new.setdefault(subnetwork_key(self._space, config), config)
            left = [c for k, c in new.items() if k not in self._seen]
            return left[self._random.randint(len(left))] if left else None
        for _ in range(self.RANDOM_DRAWS):
            config = self._space.sample(self._random)
            if subnetwork_key(self._space, config) not in self._seen:
                return config
        return None

    def on_trial_add(self, trial):
        self._scheduler.on_trial_add(trial)

    def on_trial_error(self, trial):
        self._scheduler.on_trial_error(trial)

    def on_trial_result(self, trial, result):
        if non_finite_items(result, self._scheduler.metric_names()):  # never shown to the searcher; the ledger fails the trial
            self._scheduler.on_trial_error(trial)
            return SchedulerDecision.STOP
        return self._scheduler.on_trial_result(trial, result)

    def on_trial_complete(self, trial, result):
        if non_finite_items(result, self._scheduler.metric_names()):
            return
        self._scheduler.on_trial_complete(trial, result)

    def on_trial_remove(self, trial):
        self._scheduler.on_trial_remove(trial)

    def metric_names(self):
        return self._scheduler.metric_names()

    def metric_mode(self):
        return self._scheduler.metric_mode()

    def metadata(self):
        return self._scheduler.metadata()


def trials_left(space, n_finished: int, max_trials: int | None) -> int:
    """How many trials a search (or its resumed part) may still start: what is left of ``max_trials`` (None:
    no trial budget), capped at the sub-networks of the space not tried yet (each trial is a new one)."""
    left = space.num_subnetworks() - n_finished
    return left if max_trials is None else min(max_trials - n_finished, left)


def replay(scheduler: TrialScheduler, finished: pd.DataFrame, space, config: SearchConfig) -> set[bytes]:
    """Tell a fresh scheduler the finished trials of ``finished`` (trials.csv rows; negative ids, no clash with
    new ones); returns the keys (``subnetwork_key``) of every sub-network already started."""
    names = list(space.config_space)
    seen = set()
    for index, row in enumerate(finished.to_dict("records")):
        seen.add(subnetwork_key(space, {n: int(row[n]) for n in names}))
        if row["status"] != "completed" or non_finite_items(row, config.objectives):
            continue
        trial = Trial(trial_id=-(index + 1), config={n: int(row[n]) for n in names}, creation_time=datetime.now())
        result = {o: float(row[o]) for o in config.objectives} | {FIDELITY_ATTR: config.max_fidelity}
        scheduler.on_trial_add(trial)
        if config.scheduler in MULTI_FIDELITY:
            scheduler.on_trial_result(trial, result)
        scheduler.on_trial_complete(trial, result)
    return seen
