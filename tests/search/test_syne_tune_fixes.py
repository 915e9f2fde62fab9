"""The Syne Tune 0.16 fixes, each shown against stock Syne Tune (these tests would fail without them)."""
from __future__ import annotations

import os

import numpy as np
import pytest
from syne_tune.config_space import randint
from syne_tune.optimizer.schedulers.multiobjective.expected_hyper_volume_improvement import ExpectedHyperVolumeImprovement

from syne_prune import get_search_space
from syne_prune.search.schedulers import make_scheduler
from syne_prune.search.syne_tune_fixes import FixedEHVI

SPACE = {"x": randint(0, 100), "y": randint(0, 100)}


def objectives_of(config):
    return [config["x"] / 100, 1 - config["y"] / 100]


def _complete_out_of_order(searcher, count=8):
    configs = [searcher.suggest() for _ in range(count)]
    for trial_id in reversed(range(count)):  # the last suggested finishes first
        searcher.on_trial_complete(trial_id, configs[trial_id], objectives_of(configs[trial_id]))
    return configs


def _pairs(searcher):
    return list(zip(searcher._configs_with_results(), searcher.objectives()))


def test_results_are_paired_with_their_configurations_when_trials_finish_out_of_order():
    fixed = FixedEHVI(SPACE, random_seed=0)
    _complete_out_of_order(fixed)
    values = np.array([objectives_of(c) for c, _ in _pairs(fixed)])
    # objectives() is normalised and shifted; it must be a monotone function of the true objectives per row
    normalised = np.array([y for _, y in _pairs(fixed)])
    for column in range(2):
        order_true, order_seen = np.argsort(values[:, column]), np.argsort(normalised[:, column])
        assert (order_true == order_seen).all()

    stock = ExpectedHyperVolumeImprovement(SPACE, random_seed=0)
    _complete_out_of_order(stock)
    mismatched = [not np.allclose(objectives_of(c), y) for c, y in _pairs(stock)]
    assert any(mismatched), "stock Syne Tune pairs configurations with other trials' results"


def test_objectives_sit_above_the_fixed_reference_point():
    fixed = FixedEHVI(SPACE, random_seed=0)
    _complete_out_of_order(fixed)
    negated = -fixed.objectives()
    assert (negated > 2.0).all() and negated.min() == pytest.approx(2.1) and negated.max() == pytest.approx(3.1)


def _record_kernel_compilation(monkeypatch) -> list:
    """botorch's log-EHVI as on a fresh import (its fused C++ kernel not yet tried), with torch's JIT C++ compiler
    replaced by a recorder that fails like a missing toolchain; returns the list of compile requests."""
    import torch.utils.cpp_extension
    from botorch.acquisition.multi_objective import logei

    requests = []

    def compile_request(name, sources, **kwargs):
        requests.append(name)
        raise OSError("no compiler here")
    monkeypatch.setattr(torch.utils.cpp_extension, "load", compile_request)
    monkeypatch.setattr(logei, "_load_attempted", False)
    monkeypatch.setattr(logei, "_C", None)
    return requests


def test_acquisition_suggests_a_valid_configuration_without_compiling_kernels(monkeypatch):
    """The GP + log-EHVI path (float64 guard) reaches a valid suggestion on botorch's pure-Python code: no request
    to compile its fused kernel is made, while stock Syne Tune's EHVI on the same observations makes one."""
    import warnings

    from botorch.acquisition.multi_objective import logei

    requests = _record_kernel_compilation(monkeypatch)
    fixed = FixedEHVI(SPACE, random_seed=0, optimization_strategy="random", num_init_random=2)
    _complete_out_of_order(fixed, count=6)
    config = fixed._sample_next_candidate()
    assert set(config) == {"x", "y"} and 0 <= config["x"] <= 100 and 0 <= config["y"] <= 100
    assert requests == [] and logei._C is None

    requests = _record_kernel_compilation(monkeypatch)
    stock = ExpectedHyperVolumeImprovement(SPACE, random_seed=0, optimization_strategy="random", num_init_random=2)
    _complete_out_of_order(stock, count=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # botorch's "Failed to compile" warning, expected here
        stock._sample_next_candidate()
    assert requests == ["logei_fused_ext"]


def test_ehvi_returns_its_best_candidate_among_new_sub_networks():
    """Stock EHVI returns the acquisition's argmax even when it is a configuration already tried, and
    the search turns it down and asks again (a GP fit each time); FixedEHVI skips it in one suggestion."""
    searchers = [FixedEHVI(SPACE, random_seed=0, optimization_strategy="random", num_init_random=2) for _ in range(2)]
    for searcher in searchers:
        _complete_out_of_order(searcher, count=6)
    best = searchers[0]._sample_next_candidate()  # what it picks when everything counts as new
    turned_down: list[dict] = []

    def is_new(config):
        if config == best:
            turned_down.append(config)
            return False
        return True

    searchers[1].is_new = is_new
    second = searchers[1]._sample_next_candidate()  # same seed, same observations, same candidates
    assert turned_down == [best] and second != best and set(second) == {"x", "y"}


def _drive(scheduler, steps: int) -> list[dict]:
    """Ask, run (a fixed function of the configuration) and tell, one trial at a time."""
    from datetime import datetime

    from syne_tune.backend.trial_status import Trial

    configs = []
    for trial_id in range(steps):
        config = scheduler.suggest().config
        trial = Trial(trial_id=trial_id, config=config, creation_time=datetime.now())
        scheduler.on_trial_add(trial)
        values = {"error": float(np.sin(sum(v for v in config.values() if isinstance(v, int)))) ** 2,
                  "params": sum(v for v in config.values() if isinstance(v, int)) / 200, "fidelity": 1}
        scheduler.on_trial_result(trial, values)
        scheduler.on_trial_complete(trial, values)
        configs.append(config)
    return configs


@pytest.mark.parametrize("name", ["random", "morea", pytest.param("ehvi", marks=pytest.mark.slow), "moasha", "nsga2", "local_search"])
def test_the_same_seed_gives_the_same_search(name):
    """Syne Tune 0.16 ignores the seed when it samples random configurations; every scheduler here must not."""
    from syne_prune import EncoderShape, get_search_space
    from syne_prune.search.schedulers import make_scheduler

    space = get_search_space("medium", EncoderShape(num_layers=4, num_heads=4, num_neurons=64, hidden_size=32))
    steps = 8 if name == "ehvi" else 30
    runs = [_drive(make_scheduler(name, space, ["error", "params"], seed, {}, 1), steps) for seed in (7, 7, 8)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]  # and the seed matters


def test_ehvi_fits_on_every_pareto_point_and_a_sample_of_the_rest():
    from syne_prune.pareto import non_dominated

    searcher = FixedEHVI({"x": randint(0, 1000), "y": randint(0, 1000)}, random_seed=0, max_training_points=20)
    rng = np.random.RandomState(0)
    for trial_id in range(60):
        config = {"x": int(rng.randint(1000)), "y": int(rng.randint(1000))}
        searcher.trial_configs[trial_id] = config
        searcher.on_trial_complete(trial_id, config, [float(rng.rand()), float(rng.rand())])
    selection = searcher._select_training_points()
    everything = np.array([m for _, m in searcher._completed.values()])
    front = {tuple(m) for m in everything[non_dominated(everything)]}
    chosen = {tuple(m) for _, m in selection}
    assert len(selection) == 20 and front <= chosen
    searcher.suggest()  # the model is fitted on the selection: X and Y come from it alike
    assert len(searcher._configs_with_results()) == len(searcher.objectives()) == 20


class _PeakRSS:
    """Peak resident memory of this process while the block runs (sampled every 10 ms)."""

    def __enter__(self):
        import threading

        import psutil

        self._process, self._stop = psutil.Process(), threading.Event()
        self.start = self.peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.start) / 2**20


@pytest.mark.parametrize("flow, errors", [("resumed", "constant"), pytest.param("resumed", "both_constant", marks=pytest.mark.slow),
                                          pytest.param("turned_down", "constant", marks=pytest.mark.slow),
                                          pytest.param("turned_down", "both_constant", marks=pytest.mark.slow)])
def test_ehvi_stays_bounded_when_suggestions_do_not_become_trials(flow, errors):
    """A real EHVI search reached 21.8 GB after 13 trials: its error was the same for every trial, so
    EHVI chased the smallest networks (``num_layers=0``, all one sub-network) and ``NoRepeatScheduler``
    turned them down. Stock Syne Tune kept each such suggestion (and, on resume, every suggestion:
    the Tuner's ids start past the replayed trials) pending forever and fantasised all of them, at a
    cost that doubles per pending point. Stopped at the first sign (more than MAX_PENDING fantasised)."""
    import time
    from datetime import datetime

    from syne_tune.backend.trial_status import Trial

    from syne_prune import EncoderShape, get_search_space
    from syne_prune.search.schedulers import make_scheduler
    from syne_prune.search.syne_tune_fixes import MAX_PENDING

    space = get_search_space("small", EncoderShape(num_layers=6, num_heads=12, num_neurons=1536, hidden_size=384))
    scheduler = make_scheduler("ehvi", space, ["error", "params"], 0, {}, 1)
    searcher = scheduler.searcher

    def result(config):
        params = 0.5 if errors == "both_constant" else 0.53 + 0.47 * config["num_layers"] * config["num_units"] / (6 * 1536)
        return {"error": 0.21212121212121215, "params": params, "fidelity": 1}

    def run(trial_id, config):
        trial = Trial(trial_id=trial_id, config=config, creation_time=datetime.now())
        scheduler.on_trial_add(trial)
        scheduler.on_trial_result(trial, result(config))
        scheduler.on_trial_complete(trial, result(config))

    first_id = 0
    if flow == "resumed":  # as run._replay: finished trials told with negative ids, new ids start past them
        for index, config in enumerate([space.largest(), space.smallest(), space.midpoint(), space.sample(np.random.RandomState(0))]):
            run(-(index + 1), config)
        first_id = 4
    with _PeakRSS() as memory:
        for trial_id in range(first_id, first_id + 12):
            if flow == "turned_down":
                scheduler.suggest()  # an already seen sub-network: never becomes a trial
            start = time.process_time()  # CPU seconds: a busy machine's waiting for cores is not the suggestion's cost
            config = scheduler.suggest().config
            assert time.process_time() - start < 5.0
            assert len(searcher._configs_pending()) <= MAX_PENDING
            space.validate(config)  # a valid configuration of the space
            run(trial_id, config)
    assert memory.growth_mb < 500, f"RSS grew {memory.growth_mb:.0f} MB"
    assert np.isfinite(searcher.objectives()).all()


def test_moasha_stops_a_trial_that_is_dominated_at_its_rung():
    """Stock Syne Tune 0.16 continues it: NonDominatedPriority returns an order, not ranks."""
    from datetime import datetime

    from syne_tune.backend.trial_status import Trial
    from syne_tune.optimizer.schedulers.multiobjective.multiobjective_priority import NonDominatedPriority

    from syne_prune.models.shape import EncoderShape
    from syne_prune.search.syne_tune_fixes import RankedNonDominatedPriority

    points = np.array([[0.19, 1.0], [0.19, 0.53], [0.19, 0.65], [0.19, 0.90]])
    assert list(RankedNonDominatedPriority()(points)) == [3, 0, 1, 2]  # 0.53 dominates; then 0.65, 0.90, 1.0
    assert list(NonDominatedPriority()(points)) != [3, 0, 1, 2]  # the Syne Tune bug this fixes
    space = get_search_space("small", EncoderShape(6, 12, 1536, 384))
    scheduler = make_scheduler("moasha", space, ["error", "params"], 0, {}, 3)
    decisions = []
    for trial_id, params in enumerate([0.53, 0.65, 0.90, 0.50]):
        trial = Trial(trial_id, scheduler.suggest().config, datetime.now())
        scheduler.on_trial_add(trial)
        decisions.append(scheduler.on_trial_result(trial, {"fidelity": 1, "error": 0.19, "params": params}))
    assert decisions == ["CONTINUE", "STOP", "STOP", "CONTINUE"]  # dominated ones stop; a better one continues


# ---- LocalBackend: no std.out in the working directory ----


def _prepared_backend(backend_class, tmp_path):
    import syne_tune.num_gpu

    syne_tune.num_gpu._num_gpus = None  # Syne Tune caches its count per process: count afresh, as a new search does
    backend = backend_class(entry_point=__file__)
    backend._prepare_for_schedule()  # what the first trial's _schedule does first
    return backend


def test_stock_local_backend_leaves_std_out_in_the_working_directory(tmp_path, monkeypatch):
    from syne_tune.backend import LocalBackend

    monkeypatch.chdir(tmp_path)
    _prepared_backend(LocalBackend, tmp_path)
    assert os.listdir(tmp_path) == ["std.out"]  # the Syne Tune 0.16 behaviour FixedLocalBackend avoids


@pytest.mark.parametrize("gpus", [None, 0, 2])
def test_fixed_local_backend_writes_nothing_to_the_working_directory(tmp_path, monkeypatch, gpus):
    """gpus None: this machine's nvidia-smi (or none); 0: nvidia-smi fails; 2: nvidia-smi lists two GPUs."""
    from syne_prune.search.syne_tune_fixes import FixedLocalBackend, count_gpus

    if gpus is not None:
        fake = tmp_path / "bin"
        fake.mkdir()
        listing = "".join(f"echo 'GPU {i}: Fake (UUID: GPU-{i})'\n" for i in range(gpus))
        (fake / "nvidia-smi").write_text(f"#!/bin/sh\n{listing}exit {0 if gpus else 9}\n")
        (fake / "nvidia-smi").chmod(0o755)
        monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    expected = count_gpus() if gpus is None else gpus
    backend = _prepared_backend(FixedLocalBackend, tmp_path)
    assert os.listdir(cwd) == []
    assert backend.rotate_gpus is (expected > 1)  # Syne Tune rotates over two or more GPUs only
    if expected > 0:
        assert backend.num_gpus == expected and backend.num_gpus_per_trial == 1


CHILD = "import os, subprocess, sys; import syne_prune.cli; " \
        "print(subprocess.run([sys.executable, '-c', 'import os; print(os.environ.get(\"OMP_NUM_THREADS\"))'], " \
        "capture_output=True, text=True).stdout.strip())"


@pytest.mark.slow
@pytest.mark.parametrize("given, child", [(None, "None"), ("3", "3")])
def test_processes_started_after_importing_syne_prune_keep_the_users_thread_setting(given, child):
    """Syne Tune's import puts OMP_NUM_THREADS=1 into the environment (a benchmark's training steps then ran on one
    of two cores); syne_prune takes it back unless the user set it."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"} | ({"OMP_NUM_THREADS": given} if given else {})
    assert subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True).stdout.split()[-1] == child


@pytest.mark.parametrize("n_workers, cores, threads", [(1, 2, "2"), (2, 2, "1"), (3, 8, "2")])
def test_local_backend_trials_get_their_share_of_the_cores(n_workers, cores, threads, monkeypatch):
    from syne_prune import cores as core_count
    from syne_prune.search.syne_tune_fixes import FixedLocalBackend

    monkeypatch.setattr(core_count, "usable_cores", lambda: cores)
    backend = FixedLocalBackend(entry_point=__file__, threads=core_count.threads_per_worker(n_workers))
    backend.rotate_gpus = False
    env = {"OMP_NUM_THREADS": "1"}
    backend._allocate_gpu(0, env)  # LocalBackend._schedule hands it the trial process's environment
    assert env["OMP_NUM_THREADS"] == threads


def test_a_users_thread_setting_wins_over_the_local_backends_share(monkeypatch):
    from syne_prune import cores as core_count
    from syne_prune.search.backends.local import trial_threads

    monkeypatch.setattr(core_count, "usable_cores", lambda: 4)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert trial_threads(2) == 2 and trial_threads(8) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # e.g. benchmarks/standard_nas.py, two searches side by side
    assert trial_threads(1) is None
