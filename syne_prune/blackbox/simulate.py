"""One replayed search: a scheduler of the registry against a blackbox, in Syne Tune's simulator.

The scheduler is built and wrapped exactly as in a real search (``make_scheduler`` and
``NoRepeatScheduler`` of ``syne_prune.search``: same initial points, same fixes, no sub-network started
twice, at most ``max_trials`` suggestions). Syne Tune's ``UserBlackboxBackend`` runs it on ``n_workers``
simulated workers; each trial takes its recorded evaluation seconds (``eval_s``) of simulated time, an
MO-ASHA trial reaching fidelity level k after k/F of them, and returns

- for a recorded sub-network: exactly its recorded values;
- otherwise: the surrogate's prediction (``surrogate.py``), params and MACs exact from the mask;
- with no surrogate (``surrogate=None``): only recorded sub-networks are ever started. A suggestion of
  an unrecorded one is replaced by the nearest recorded sub-network not yet started (Euclidean distance in
  the surrogate's encoding: kept share of heads and neurons per layer; ties by table order), so each
  scheduler keeps its direction while sampling from the table; the replay ends early once every
  recorded sub-network has been started.

Determinism: the simulator would add the real seconds spent in the scheduler to the simulated clock
(``SimulatedTimeKeeper``); here only simulated time counts (scheduler cost is not part of a replay),
so one seed always gives the same trials at the same simulated times. The Tuner's idle wait advances the
clock by ``tick`` = 1/20 of the median recorded evaluation time.
"""
from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import torch
from syne_tune import StoppingCriterion, Tuner
from syne_tune.backend.simulator_backend.simulator_backend import SimulatorConfig
from syne_tune.backend.simulator_backend.simulator_callback import SimulatorCallback
from syne_tune.backend.simulator_backend.time_keeper import SimulatedTimeKeeper
from syne_tune.blackbox_repository.blackbox import Blackbox as SyneTuneBlackbox
from syne_tune.blackbox_repository.simulated_tabular_backend import UserBlackboxBackend
from syne_tune.config_space import randint
from syne_tune.optimizer.scheduler import SchedulerDecision
from syne_tune.tuner_callback import TunerCallback

from syne_prune.blackbox import format as F
from syne_prune.blackbox.surrogate import Surrogate, encode
from syne_prune.errors import SynePruneError
from syne_prune.objectives import encoder_size
from syne_prune.search import FIDELITY_ATTR, MULTI_FIDELITY, NoRepeatScheduler, QuietTunerLogger, make_scheduler, no_best_metric_table, subnetwork_key

ELAPSED = "elapsed_s"
REPORTED = ("error", "params", "macs", "test_error", ELAPSED, "recorded")


class SubnetworkBlackbox(SyneTuneBlackbox):
    """A recorded blackbox as Syne Tune's ``Blackbox``: ``objective_function(config)`` returns an array
    (levels, len(REPORTED)) — one row per reported fidelity level (all F for MO-ASHA, else only the last,
    reported as level 1 like a single-fidelity search). ``recorded`` is 1.0 for a recorded sub-network."""

    def __init__(self, table: F.Blackbox, surrogate: Surrogate | None, multi_fidelity: bool) -> None:
        self.table, self.space, self.surrogate = table, table.space(), surrogate
        self.levels = table.levels if multi_fidelity else 1
        super().__init__(configuration_space=self.space.config_space, fidelity_space={FIDELITY_ATTR: randint(1, self.levels)},
                         objectives_names=list(REPORTED))
        self.rows = {subnetwork_key(self.space, row): row for row in table.rows.to_dict("records")}
        self._predicted: dict[bytes, dict[str, float]] = {}

    @property
    def fidelity_values(self) -> np.ndarray:
        return np.arange(1, self.levels + 1)

    def values(self, config: dict[str, Any]) -> dict[str, float]:
        """Recorded (or predicted) values of ``config``: valid_error_1..F, test_error, params, macs, eval_s, recorded."""
        key = subnetwork_key(self.space, config)
        if key in self.rows:
            return {**self.rows[key], "recorded": 1.0}
        if self.surrogate is None:
            raise SynePruneError("a configuration outside the blackbox was started with --surrogate none (a bug); please report it")
        if key not in self._predicted:
            self._predicted[key] = {**self.surrogate.predict(config), **self.sizes(config), "recorded": 0.0}
        return self._predicted[key]

    def sizes(self, config: dict[str, Any]) -> dict[str, float]:
        """Exact params and MACs ratios of ``config`` from the header's size record."""
        size = self.table.header["size"]
        params, macs = encoder_size(self.space.shape, self.space.to_mask(config), size["seq_len"])
        return {"params": (size["fixed_params"] + params) / size["full_params"], "macs": (size["fixed_macs"] + macs) / size["full_macs"]}

    def _objective_function(self, configuration, fidelity=None, seed=None) -> np.ndarray:
        values = self.values(configuration)
        F_ = self.table.levels
        reported = range(1, F_ + 1) if self.levels > 1 else [F_]
        return np.array([[values[f"valid_error_{k}"], values["params"], values["macs"], values["test_error"],
                          values["eval_s"] * k / F_, values["recorded"]] for k in reported], dtype=float)


class _SimulatedTimeOnly(SimulatedTimeKeeper):
    """Counts no real time: the scheduler's own computing does not move the simulated clock."""

    def real_time_since_last_recent_exit(self) -> float:
        return 0.0


class _ReplayBackend(UserBlackboxBackend):
    def __init__(self, blackbox: SubnetworkBlackbox, tick: float) -> None:
        super().__init__(blackbox=blackbox, elapsed_time_attr=ELAPSED, tuner_sleep_time=tick,
                         simulator_config=SimulatorConfig(0.0, 0.0, 0.0, 0.0, 0.0))
        self._time_keeper = _SimulatedTimeOnly()


class _RecordedOnlyScheduler(NoRepeatScheduler):
    """``--surrogate none``: a suggestion of an unrecorded sub-network becomes the nearest recorded one
    not yet started (see the module docstring)."""

    def __init__(self, scheduler, space, seen: set[bytes], budget: int | None, table: F.Blackbox) -> None:
        super().__init__(scheduler, space, seen, budget)
        self._configs = table.rows[table.names].astype(int).to_dict("records")
        self._keys = [subnetwork_key(space, c) for c in self._configs]
        self._recorded = set(self._keys)
        self._encoded = encode(space, self._configs)

    def _suggest(self):
        suggestion = super()._suggest()
        if suggestion is None or suggestion.config is None:
            return suggestion
        if subnetwork_key(self._space, suggestion.config) in self._recorded:
            return suggestion
        free = [i for i, key in enumerate(self._keys) if key not in self._seen]
        if not free:
            return None  # every recorded sub-network has been started
        distances = ((self._encoded[free] - encode(self._space, [suggestion.config])) ** 2).sum(1)
        chosen = free[int(np.argmin(distances))]
        self._seen.add(self._keys[chosen])
        constants = {k: v for k, v in suggestion.config.items() if k not in self._space.config_space}
        suggestion.config = {**self._configs[chosen], **constants}
        searcher = getattr(self._scheduler, "searcher", None)
        if getattr(searcher, "trial_configs", None):  # EHVI keeps its suggestion pending until a trial of it completes:
            searcher.trial_configs[-1] = dict(suggestion.config)  # it is the snapped one that runs
        return suggestion


class _TrialRecorder(TunerCallback):
    """One row per finished trial: configuration, last reported values, simulated start and end seconds."""

    def __init__(self, names: list[str], max_fidelity: int) -> None:
        self.names, self.max_fidelity = names, max_fidelity
        self.rows: dict[int, dict[str, Any]] = {}
        self.start = None

    def on_tuning_start(self, tuner) -> None:
        self.backend = tuner.trial_backend

    def _write(self, trial, result: dict[str, Any], status: str) -> None:
        if trial.trial_id in self.rows:
            return
        if result.get(FIDELITY_ATTR, 0) >= self.max_fidelity:
            status = "completed"  # MO-ASHA stops trials at the top rung too
        started = (trial.creation_time - self.backend.time_keeper.start_time_stamp).total_seconds()
        self.rows[trial.trial_id] = {"trial_id": trial.trial_id, "status": status, **{n: int(trial.config[n]) for n in self.names},
                                     FIDELITY_ATTR: int(result[FIDELITY_ATTR]), **{k: float(result[k]) for k in REPORTED},
                                     "start_s": started, "end_s": float(result["st_tuner_time"])}

    def on_trial_result(self, trial, status, result, decision) -> None:
        if decision == SchedulerDecision.STOP:
            self._write(trial, result, "stopped")

    def on_trial_complete(self, trial, result) -> None:
        self._write(trial, result, "completed")

    def frame(self) -> pd.DataFrame:
        columns = ["trial_id", "status", *self.names, FIDELITY_ATTR, *REPORTED, "start_s", "end_s"]
        return pd.DataFrame([self.rows[k] for k in sorted(self.rows)], columns=columns)


@contextlib.contextmanager
def _replay_process_state(experiment_dir: str) -> Iterator[None]:
    """Syne Tune's results folder and exactly one torch thread for the duration of a replay, then the
    previous ones back. One thread: reductions in EHVI's GP (botorch) add in the same order in every
    process, so a replay's trials are the same whatever the number of parallel replays (``--jobs``)."""
    previous, threads = os.environ.get("SYNETUNE_FOLDER"), torch.get_num_threads()
    os.environ["SYNETUNE_FOLDER"] = str(experiment_dir)
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        if previous is None:
            os.environ.pop("SYNETUNE_FOLDER", None)
        else:
            os.environ["SYNETUNE_FOLDER"] = previous


def replay(table: F.Blackbox, surrogate: Surrogate | None, scheduler_name: str, seed: int, objectives: list[str],
           n_workers: int, max_trials: int | None, max_wallclock_s: float | None, experiment_dir: str) -> pd.DataFrame:
    """Run one replayed search; returns its trials (one row per finished trial, by trial id) with
    ``start_s``/``end_s`` in simulated seconds. ``experiment_dir``: where Syne Tune writes its results.
    Runs with one torch thread (restored afterwards), so the result does not depend on the caller's setting."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    multi = scheduler_name in MULTI_FIDELITY
    blackbox = SubnetworkBlackbox(table, surrogate, multi)
    space = blackbox.space
    scheduler = make_scheduler(scheduler_name, space, objectives, seed, {}, blackbox.levels)
    if surrogate is None:
        wrapped = _RecordedOnlyScheduler(scheduler, space, set(), max_trials, table)
    else:
        wrapped = NoRepeatScheduler(scheduler, space, set(), max_trials)
    tick = max(1e-3, float(np.median(table.rows["eval_s"])) / 20)
    recorder = _TrialRecorder(list(space.config_space), blackbox.levels)
    with _replay_process_state(experiment_dir):
        tuner = Tuner(trial_backend=_ReplayBackend(blackbox, tick), scheduler=wrapped,
                      stop_criterion=StoppingCriterion(max_wallclock_time=max_wallclock_s), n_workers=n_workers, sleep_time=0,
                      callbacks=[SimulatorCallback(), recorder], tuner_name=f"{scheduler_name}-seed-{seed}", suffix_tuner_name=False,
                      save_tuner=False, print_update_interval=10**9, results_update_interval=10**9, max_failures=0,
                      output_logger=QuietTunerLogger())
        with no_best_metric_table():
            tuner.run()
    trials = recorder.frame()
    if max_wallclock_s is not None:
        trials = trials[trials["end_s"] <= max_wallclock_s]
    return trials.reset_index(drop=True)
