"""The search's ledger and budget:

- a resumed search derives every output from its one ledger (trials.csv), the killed part included;
- a space with fewer sub-networks than the budget ends at once, with exactly its size in trials and a notice;
- values derived from settings (fidelity levels, the unpruned reference) come from one place.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from syne_tune.backend.trial_status import Trial
from syne_tune.experiments import load_experiment

from syne_prune import EncoderShape, artifacts, get_search_space
from syne_prune.pareto import hypervolume
from syne_prune.search import SCHEDULERS, NoRepeatScheduler, SearchConfig, WeightSharingSettings, export_from_search, run_search, subnetwork_key
from syne_prune.search import results as R
from syne_prune.search.schedulers import make_scheduler
from syne_prune.search.scheduling import trials_left
from syne_prune.search.trial import Evaluator, TrialSettings, fidelity_levels

TINY = EncoderShape(num_layers=2, num_heads=2, num_neurons=3, hidden_size=8)


# ---- a space smaller than the budget ----------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [("small", 13), ("medium", 144), ("layer", 4), ("large", 1024)])
def test_the_space_size_counts_distinct_subnetworks(name, expected):
    """small: 1 empty network + 2 layers x 2 heads x 3 units; medium (3 x 4)^2; layer 2^2; large (2^2 x 2^3)^2."""
    space = get_search_space(name, TINY)
    configs = list(space.configurations())
    assert len(configs) == space.num_configurations()
    assert space.num_subnetworks() == expected == len({subnetwork_key(space, c) for c in configs})


def _drive(wrapped, space, max_fidelity: int, limit: int = 10) -> list[bytes]:
    """The Tuner's calls, one trial at a time: suggest, add, a result per fidelity level, complete."""
    keys = []
    for trial_id in range(limit):
        suggestion = wrapped.suggest()
        if suggestion is None:
            break
        trial = Trial(trial_id=trial_id, config=suggestion.config, creation_time=datetime.now())
        wrapped.on_trial_add(trial)
        params = float(space.to_mask(suggestion.config).heads.sum()) / 8
        for level in range(1, max_fidelity + 1):
            result = {"error": 0.6 - 0.2 * params, "params": params, "fidelity": level}
            wrapped.on_trial_result(trial, result)
        wrapped.on_trial_complete(trial, result)
        keys.append(subnetwork_key(space, suggestion.config))
    return keys


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("max_trials", [6, None])  # a trial budget larger than the space; a wall-clock budget only
def test_every_scheduler_stops_asking_once_the_space_is_spent(scheduler, max_trials):
    space = get_search_space("layer", EncoderShape(num_layers=2, num_heads=4, num_neurons=37, hidden_size=32))
    assert trials_left(space, 0, max_trials) == 4 and trials_left(space, 1, max_trials) == 3
    max_fidelity = 3 if scheduler == "moasha" else 1
    for budget in (trials_left(space, 0, max_trials), None):  # the search's cap, and the wrapper's own guard
        inner = make_scheduler(scheduler, space, ["error", "params"], 0, {"supernet": "x"}, max_fidelity)
        asks: list[int] = []

        def counted(suggest=inner.suggest, asks=asks):
            asks.append(1)
            return suggest()

        inner.suggest = counted
        wrapped = NoRepeatScheduler(inner, space, set(), budget)
        started = time.perf_counter()
        keys = _drive(wrapped, space, max_fidelity)
        assert len(keys) == 4 and len(set(keys)) == 4  # every sub-network once, and no more
        before = len(asks)
        assert wrapped.suggest() is None and len(asks) == before  # the scheduler is not asked in vain
        assert wrapped.stats["suggestions"] == 4 and wrapped.stats["repeats_rejected"] <= 4 * NoRepeatScheduler.MAX_ASKS
        assert time.perf_counter() - started < 10


def test_a_scheduler_proposing_only_seen_subnetworks_is_asked_at_most_max_asks_times():
    from syne_tune.optimizer.scheduler import TrialScheduler, TrialSuggestion

    space = get_search_space("layer", TINY)

    class Stubborn(TrialScheduler):  # proposes the largest network forever
        asks = 0

        def suggest(self):
            Stubborn.asks += 1
            return TrialSuggestion.start_suggestion({"layer_0": 1, "layer_1": 1, "supernet": "x"})

        def metric_names(self):
            return ["error", "params"]

    wrapped = NoRepeatScheduler(Stubborn(random_seed=0), space, set(), None)
    keys = _drive(wrapped, space, 1)
    assert len(set(keys)) == 4 and wrapped.stats["suggestions"] == 4
    assert Stubborn.asks == 1 + 3 * NoRepeatScheduler.MAX_ASKS  # accepted once, then 10 refusals per random pick
    assert wrapped.stats["repeats_rejected"] == 30 and wrapped.suggest() is None and Stubborn.asks == 31


# ---- fidelity levels and the unpruned reference, one place each ----------------------------------

def test_fidelity_levels_are_capped_at_the_validation_size():
    assert fidelity_levels(9, 5) == 5 and fidelity_levels(3, 30) == 3 and fidelity_levels(9, 0) == 1


@pytest.fixture(scope="module")
def layer_supernet(tiny_model_dirs, glue_dir, tmp_path_factory):
    """A tiny BERT super-network over the layer space of its 2 layers: 4 sub-networks."""
    from syne_prune.supernet import TrainingConfig, train_supernet

    out = tmp_path_factory.mktemp("layer-supernet") / "bert"
    train_supernet(TrainingConfig(teacher=None, model=str(tiny_model_dirs["bert"]), task="rte", output=str(out), data_dir=str(glue_dir),
                                  search_space="layer", strategy="sandwich", epochs=1, batch_size=16, lr=1e-3, max_length=48,
                                  max_train_examples=32), progress=False)
    return out


@pytest.mark.slow
def test_moasha_with_fewer_validation_examples_than_levels_and_a_space_smaller_than_the_budget(layer_supernet, tmp_path, capfd):
    """9 levels asked, 5 validation examples: search and trials both use 5 levels, so completed trials are on
    the Pareto front and export finds them; 6 trials asked of a 4-network space: exactly 4, and a notice;
    the unpruned reference is the largest configuration scored by the trials' Evaluator on the same split."""
    out = tmp_path / "out"
    summary = run_search(SearchConfig(trial_settings=WeightSharingSettings(str(layer_supernet)), output=str(out), scheduler="moasha", n_workers=1,
                                      max_trials=6, max_eval_examples=5, eval_batch_size=8), progress=False)
    notice = "the layer search space has 4 sub-networks: the search ends once every one is evaluated (--max-trials 6 capped at 4)"
    assert summary["notice"] == notice and json.loads((out / "summary.json").read_text())["notice"] == notice
    err = capfd.readouterr().err
    assert err.count(notice) == 1 and "--fidelity-levels 9 capped at 5" in err
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 4 and summary["search_space_subnetworks"] == 4 and summary["fidelity_levels"] == 5
    assert summary["scheduler_cost"]["suggestions"] == 4 and summary["scheduler_cost"]["no_new_subnetwork"] == 0
    completed = trials[trials["status"] == "completed"]
    assert len(completed) >= 1 and (completed["fidelity"] == 5).all()
    pareto = pd.read_csv(out / "pareto.csv")
    assert len(pareto) >= 1 and set(pareto["trial_id"]) <= set(completed["trial_id"])
    _, row = export_from_search(out, tmp_path / "model", max_params=1.0)
    assert row["trial_id"] in set(pareto["trial_id"])
    evaluator = Evaluator(TrialSettings(supernet=str(layer_supernet), fidelity_levels=9, max_eval_examples=5, eval_batch_size=8))
    assert len(evaluator.validation_chunks) == 5
    largest = {"layer_0": 1, "layer_1": 1}
    assert summary["unpruned"]["error"] == evaluator.evaluate(largest, lambda r: None)["error"]
    assert summary["unpruned"]["test_error"] == evaluator.test_error(largest)
    mine = trials[(trials["layer_0"] == 1) & (trials["layer_1"] == 1)]
    if summary["unpruned"]["trial_id"] is not None:  # the largest configuration's own trial, when it ran every level
        assert mine["status"].item() == "completed" and summary["unpruned"]["error"] == mine["error"].item()


# ---- a killed part is part of every output --------------------------------------------------------

def test_a_ledger_from_an_earlier_version_gets_the_new_columns(tmp_path):
    path = tmp_path / "trials.csv"
    path.write_text("trial_id,status,error\n0,completed,0.25\n")
    ledger = artifacts.TrialLedger(path, ["trial_id", "status", "error", "part", "finished_s"])
    ledger.append({"trial_id": 1, "status": "completed", "error": 0.5, "part": 1, "finished_s": 2.5})
    frame = pd.read_csv(path)
    assert frame.columns.tolist() == ["trial_id", "status", "error", "part", "finished_s"]
    assert frame["error"].tolist() == [0.25, 0.5] and frame["part"].isna().tolist() == [True, False]


def test_a_killed_parts_suggestions_are_never_fewer_than_its_trials_in_the_ledger(tmp_path):
    """Part 0 was killed after its last heartbeat counted 1 suggestion, but its ledger holds 3 trials: 3.
    Part 1's clock counted 5 (two turned into no trial): 5 stays. Part 2 has no clock file: its 1 trial."""
    experiments = tmp_path / "syne-tune"
    for part, suggestions in ((0, 1), (1, 5)):
        (experiments / f"part-{part}").mkdir(parents=True)
        (experiments / f"part-{part}" / R.PART_FILE).write_text(json.dumps({"seconds": 1.0, "first_trial_id": 0,
                                                                            "scheduler": {"suggestions": suggestions, "suggest_s": 0.5}}))
    trials = pd.DataFrame({"trial_id": range(7), "status": ["completed"] * 7, "part": [0, 0, 0, 1, 1, 1, 2],
                           "finished_s": [1.0] * 7})
    parts = R.read_parts(experiments, trials)
    assert [p["scheduler"].get("suggestions") for p in parts] == [3, 5, 1]
    assert [p["scheduler"].get("suggest_s") for p in parts] == [0.5, 0.5, None]


def test_curve_times_and_syne_tune_results_come_from_the_ledger(tmp_path):
    """Part 0 ran 10 s (killed: its clock file says 9 s, its last trial finished at 10 s), part 1 5 s."""
    experiments = tmp_path / "syne-tune"
    for part, seconds, first in ((0, 9.0, 0), (1, 5.0, 3)):
        (experiments / f"part-{part}").mkdir(parents=True)
        (experiments / f"part-{part}" / R.PART_FILE).write_text(json.dumps({"seconds": seconds, "first_trial_id": first,
                                                                            "scheduler": {"suggestions": 3}}))
    trials = pd.DataFrame({"trial_id": [0, 1, 2, 4], "status": ["completed", "completed", "stopped", "completed"],
                           "layer_0": [1, 0, 1, 0], "error": [0.5, 0.8, 0.6, 0.7], "params": [1.0, 0.2, 0.5, 0.4],
                           "fidelity": [1, 1, 1, 1], "part": [0, 0, 0, 1], "finished_s": [2.0, 10.0, 4.0, 1.0]})
    parts = R.read_parts(experiments, trials)
    assert [p["seconds"] for p in parts] == [10.0, 5.0] and R.search_seconds(parts) == 15.0
    curve = R.hypervolume_over_time(trials, parts, ["error", "params"], 1)
    # (0.5, 1.0) adds nothing inside the reference 1.0; then (0.8, 0.2): 0.2 x 0.8; then (0.7, 0.4) at 10 + 1
    assert curve["wallclock_s"].tolist() == [2.0, 10.0, 11.0]
    assert curve["hypervolume"].tolist() == pytest.approx([0.0, 0.16, 0.16 + 0.1 * 0.6])  # + the box of (0.7, 0.4) left of 0.8
    # part 0 was flushed once, with trial 0 only; part 1's file was cut mid-write by the kill
    pd.DataFrame({"error": [0.5], "params": [1.0], "fidelity": [1], "st_tuner_time": [1.9], "trial_id": [0],
                  "config_layer_0": [1]}).to_csv(experiments / "part-0" / R.SYNE_TUNE_RESULTS, index=False)
    (experiments / "part-1" / R.SYNE_TUNE_RESULTS).write_bytes(b"PK\x03\x04 cut")
    added = R.complete_experiment_results(experiments, trials, parts, ["layer_0"], ["error", "params", "fidelity"])
    assert added == 3  # trials 1 and 2 of part 0, trial 4 of part 1
    part0 = load_experiment("part-0", local_path=str(experiments)).results
    assert part0["trial_id"].tolist() == [0, 1, 2] and part0["error"].tolist() == [0.5, 0.8, 0.6]
    assert part0["st_tuner_time"].tolist() == [1.9, 10.0, 4.0] and part0["config_layer_0"].tolist() == [1, 0, 1]
    assert part0["st_status"].tolist()[1:] == ["Completed", "Stopped"] and part0["syne_prune_recovered"].tolist()[1:] == [True, True]
    assert load_experiment("part-1", local_path=str(experiments)).results["trial_id"].tolist() == [1]  # Syne Tune's id: 4 - 3
    assert R.complete_experiment_results(experiments, trials, parts, ["layer_0"], ["error"]) == 0  # nothing twice


@pytest.mark.slow
def test_a_search_killed_before_syne_tunes_first_flush_resumes_with_complete_outputs(supernets, tmp_path):
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "syne_prune.cli", "search", "--supernet", str(supernets["bert"]), "--scheduler", "morea",
            "--n-workers", "1", "--max-trials", "24", "--seed", "5", "--eval-batch-size", "8", "--output", str(out)]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline, seen_at = time.time() + 300, None
    while time.time() < deadline:
        if seen_at is None and (out / "trials.csv").exists():
            seen_at = time.time()
        if seen_at is not None and len(pd.read_csv(out / "trials.csv")) >= 3:
            break
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)  # the search and its pool workers
    killed_at = time.time()
    process.wait()
    before = pd.read_csv(out / "trials.csv")
    assert 3 <= len(before) < 24 and (before["part"] == 0).all()
    flushed = out / "syne-tune" / "part-0" / R.SYNE_TUNE_RESULTS
    assert not flushed.exists() or len(pd.read_csv(flushed)["trial_id"].unique()) < len(before)  # the fault's precondition
    summary = run_search(SearchConfig(trial_settings=WeightSharingSettings(str(supernets["bert"])), output=str(out), scheduler="morea", max_trials=24,
                                      n_workers=1, seed=5, eval_batch_size=8), resume=True, progress=False)
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 24 and trials["trial_id"].is_unique and set(trials["part"]) == {0, 1}
    curve = pd.read_csv(out / "hypervolume.csv")
    done = trials[trials["status"] == "completed"]
    assert len(curve) == len(done) and curve["wallclock_s"].is_monotonic_increasing
    assert curve["hypervolume"].iloc[-1] == pytest.approx(summary["hypervolume"], abs=1e-12) and summary["hypervolume"] > 0
    killed_part = summary["parts"][0]["seconds"]
    assert killed_part >= (killed_at - seen_at) - 1.0  # to within the clock's heartbeat (0.5 s) and the poll
    assert summary["wallclock_s"] == pytest.approx(killed_part + summary["parts"][1]["seconds"])
    assert summary["scheduler_cost"]["suggestions"] >= 24  # the killed part's suggestions too (its lost trials included)
    first = json.loads((out / "syne-tune" / "part-1" / R.PART_FILE).read_text())["first_trial_id"]
    for part, rows in ((0, trials[trials["part"] == 0]), (1, trials[trials["part"] == 1])):
        results = load_experiment(f"part-{part}", local_path=str(out / "syne-tune")).results
        assert set(results["trial_id"]) >= set(rows["trial_id"] - (first if part else 0))
    pareto = pd.read_csv(out / "pareto.csv")
    assert len(pareto) and pareto["test_error"].notna().all() and set(pareto["trial_id"]) <= set(done["trial_id"])
    assert sorted(pd.read_csv(out / "test_errors.csv")["trial_id"]) == sorted(pareto["trial_id"])
    points = done[["error", "params"]].to_numpy()
    assert hypervolume(points[np.all(points < 1.0, axis=1)]) == pytest.approx(summary["hypervolume"], abs=1e-12)
