"""Reproducible searches with several workers (``SearchConfig.reproducible``, ``--reproducible``)."""
from __future__ import annotations

import pandas as pd
import pytest
from syne_tune.backend.trial_status import Trial

from syne_prune import SynePruneError
from syne_prune.search import SearchConfig, WeightSharingSettings, run_search
from syne_prune.search.in_order import InOrderScheduler


class _Recorder:
    """A stand-in scheduler that records the events it is handed."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []

    def on_trial_result(self, trial, result):
        self.events.append(("result", trial.trial_id))

    def on_trial_complete(self, trial, result):
        self.events.append(("complete", trial.trial_id))

    def on_trial_error(self, trial):
        self.events.append(("error", trial.trial_id))

    def suggest(self):
        self.events.append(("suggest", -1))
        return None


def _trial(trial_id: int) -> Trial:
    return Trial(trial_id=trial_id, config={}, creation_time=pd.Timestamp.now())


def test_events_reach_the_scheduler_in_trial_order_before_the_next_suggestion():
    inner = _Recorder()
    scheduler = InOrderScheduler(inner)
    scheduler.on_trial_complete(_trial(2), {"error": 0.3})  # finished first
    scheduler.on_trial_error(_trial(1))
    assert scheduler.on_trial_result(_trial(0), {"error": 0.5}) == "CONTINUE"
    scheduler.on_trial_complete(_trial(0), {"error": 0.5})
    assert inner.events == []  # nothing is handed on before the next suggestion
    scheduler.suggest()
    assert inner.events == [("result", 0), ("complete", 0), ("error", 1), ("complete", 2), ("suggest", -1)]


def test_a_stopping_scheduler_with_several_workers_is_refused(supernets, tmp_path):
    config = SearchConfig(trial_settings=WeightSharingSettings(str(supernets["bert"])), output=str(tmp_path / "out"), scheduler="moasha", n_workers=2,
                          max_trials=4, reproducible=True)
    with pytest.raises(SynePruneError, match="^--reproducible with moasha.*--n-workers 1"):
        run_search(config, progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_the_same_seed_gives_the_same_trials_with_two_workers(supernets, tmp_path):
    """Two runs of a MOREA search (its population follows the results it has seen) on the pool backend with 2
    workers: the same sub-networks in the same trial order with the same objective values."""
    tables = []
    for run in range(2):
        out = tmp_path / f"run{run}"
        run_search(SearchConfig(trial_settings=WeightSharingSettings(str(supernets["bert"])), output=str(out), scheduler="morea", n_workers=2, max_trials=10,
                                seed=5, eval_batch_size=8, reproducible=True), progress=False)
        tables.append(pd.read_csv(out / "trials.csv"))
    first, second = tables
    assert list(first["trial_id"]) == list(range(10))  # rewritten in trial order at the end
    columns = [c for c in first.columns if c.startswith("num_") or c in ("trial_id", "status", "error", "params")]
    pd.testing.assert_frame_equal(first[columns], second[columns])
