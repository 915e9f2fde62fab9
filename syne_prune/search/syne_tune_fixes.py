"""Every workaround for Syne Tune 0.16 lives here (see docs: syne-tune-0.16.md).

- ``FixedEHVI``: Syne Tune's EHVI searcher with its three bugs fixed:
  1. botorch 0.18's log-EHVI was reported to crash on float32 objectives against a float64 GP
     (``expected scalar type Double but found Float``). We could not reproduce it on botorch's
     pure-Python path, which we use (see below); the acquisition still runs under float64 as a guard.
  2. Its reference point is fixed at 2 in botorch's maximisation space (negated objectives), so with
     objectives in [0, 1] nothing improves on it and the acquisition is flat (worse than random).
     ``objectives()`` now returns each objective min-max normalised to [0, 1] over the observations
     and shifted so that, negated, the worst observation sits 0.1 above that fixed reference point.
  3. It pairs configurations (kept in suggestion order) with results (kept in completion order):
     wrong whenever trials finish out of order or fail. X and Y are now built from the same
     completed trial ids, with the configuration the scheduler reports at completion.
  4. It marks every suggestion pending under its own counter but clears it with the Tuner's trial id,
     so a suggestion that never becomes a trial (turned down by ``NoRepeatScheduler`` as an already
     seen sub-network), a resumed search (Tuner ids start past the replayed trials) or a failed trial
     stays pending forever. Every pending point joins each candidate in the q-batch log-EHVI, whose
     cost doubles with each one (inclusion-exclusion over subsets): a search whose error was the same
     for every trial (EHVI then chases the smallest networks, all ``num_layers=0`` and so all turned
     down) reached 21.8 GB and was OOM-killed after 13 trials. Pending suggestions are now matched by
     configuration and at most ``MAX_PENDING`` (the latest) are fantasised.
  5. It returns the argmax of the acquisition over its random candidates even when that is a
     sub-network already evaluated (most often one of the many ``num_layers=0`` spellings of the
     empty network); ``NoRepeatScheduler`` turns it down and asks again, and every ask refits the GP.
     Measured on STS-B (100 trials, small space): 592 suggestions turned down, 553 of the search's
     615 s spent in ``suggest``. ``FixedEHVI`` now ranks its candidates by acquisition and returns the
     best one that ``is_new`` accepts (the search sets it to "not a sub-network already started").
- Suggestion time: the GP is refitted on every suggestion and costs ~cubic in its training points.
  ``FixedEHVI`` fits on at most ``MAX_TRAINING_POINTS`` observations: all non-dominated ones and a
  seeded random sample of the rest (Syne Tune's own cap drew a uniform sample, Pareto points included).
  Most of a suggestion is the Monte-Carlo log-EHVI over the random candidates, linear in its samples:
  32 instead of 128 (1.38 s -> 0.45 s per suggestion at 300 observations; with 100 points 0.33 s).
- botorch 0.18 JIT-compiles a fused C++ kernel (``-march=native``) the first time log-EHVI runs:
  minutes of compiling in the middle of a search, a C++ toolchain required, and a lock file that
  blocks every later search if that process is killed. ``FixedEHVI`` uses botorch's own pure-Python
  fallback instead.
- ``QuietTunerLogger`` and ``no_best_metric_table``: the Tuner prints every trial event with its
  whole configuration, and at the end a table and the "best" trial of the first metric alone
  (meaningless for a multi-objective search); only errors are kept (syne-prune shows a progress bar
  and writes trials.csv, pareto.csv and summary.json).
- Seeds that are ignored: Syne Tune 0.16 samples random configurations with ``Domain.sample()``
  and no ``random_state`` in the random searcher, in MOREA's initial population (its
  ``sample_random_config`` takes an ``rng`` and drops it) and in EHVI's random candidates, so two
  searches with the same seed differed after the initial points (measured: 3 runs, 3 sequences).
  ``SeededRandomSearcher``, ``_seeded_sample_random_config`` (patched into MOREA) and
  ``FixedEHVI._get_random_config`` draw from the searcher's own seeded generator.
- ``SeededMOASHA``: MOASHA draws configurations and brackets from numpy's global random generator
  and has no initial points; this one evaluates given points first and draws from its own seeded
  generator.
- ``FixedLocalBackend``: ``LocalBackend`` counts GPUs (``syne_tune.num_gpu.get_num_gpus``) by sending
  ``nvidia-smi --list-gpus`` into a file ``std.out`` in the current directory, which it leaves behind
  (empty on a machine without GPUs). This one counts the same way from memory; without GPUs it does
  not rotate them, which also spares the "num_gpus_per_trial = 1 is too large" warning.
"""
from __future__ import annotations

import subprocess
from contextlib import contextmanager
from typing import Any, Callable

import numpy as np
import syne_tune.tuner as tuner_module
import torch
from syne_tune.backend import LocalBackend
from syne_tune.backend.trial_status import Trial
from syne_tune.config_space import Domain
from syne_tune.optimizer.scheduler import TrialSuggestion
from syne_tune.optimizer.schedulers.multiobjective import multi_objective_regularized_evolution as _morea
from syne_tune.optimizer.schedulers.multiobjective.expected_hyper_volume_improvement import (
    ExpectedHyperVolumeImprovement,
)
from syne_tune.optimizer.schedulers.multiobjective.moasha import MOASHA
from syne_tune.optimizer.schedulers.multiobjective.multiobjective_priority import NonDominatedPriority
from syne_tune.optimizer.schedulers.searchers import regularized_evolution as _regularized_evolution
from syne_tune.optimizer.schedulers.searchers.random_searcher import MultiObjectiveRandomSearcher
from syne_tune.tuner_logger import TunerLogger

from syne_prune.pareto import non_dominated

REFERENCE_MARGIN = 0.1
MAX_TRAINING_POINTS = 100  # EHVI's GP sees at most this many observations (suggestion time, BENCHMARKS.md)
MC_SAMPLES = 32  # quasi-Monte-Carlo samples of the acquisition (Syne Tune: 128; 4x the cost, BENCHMARKS.md)
MAX_PENDING = 2  # fantasised pending suggestions: log-EHVI's time and memory double with each one (bug 4 above)


def _seeded_sample_random_config(config_space: dict[str, Any], rng: np.random.RandomState) -> dict[str, Any]:
    """A random configuration drawn from ``rng`` (Syne Tune's version of this function ignores it)."""
    return {k: v.sample(random_state=rng) if hasattr(v, "sample") else v for k, v in config_space.items()}


_morea.sample_random_config = _seeded_sample_random_config
_regularized_evolution.sample_random_config = _seeded_sample_random_config


class SeededRandomSearcher(MultiObjectiveRandomSearcher):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.random_state = np.random.RandomState(self.random_seed)

    def suggest(self) -> dict | None:
        return self._next_points_to_evaluate() or _seeded_sample_random_config(self.config_space, self.random_state)
_BOTORCH_REFERENCE = 2.0  # hard-coded in Syne Tune 0.16's EHVI, in maximisation space


def _skip_botorch_kernel_compilation() -> None:
    from botorch.acquisition.multi_objective import logei  # heavy (botorch, gpytorch): only the EHVI scheduler needs them

    logei._load_attempted = True  # botorch then uses its pure-Python implementation


class FixedEHVI(ExpectedHyperVolumeImprovement):
    def __init__(self, *args, max_training_points: int = MAX_TRAINING_POINTS, mc_samples: int = MC_SAMPLES,
                 max_pending: int = MAX_PENDING, **kwargs) -> None:
        _skip_botorch_kernel_compilation()
        # Syne Tune subsamples uniformly at random past 200 observations, which can drop Pareto points
        super().__init__(*args, max_num_observations=None, mc_samples=mc_samples, **kwargs)
        self.max_training_points = max_training_points
        self.max_pending = max_pending
        self._completed: dict[int, tuple[dict[str, Any], list[float]]] = {}
        self._training: tuple[int, list[tuple[dict[str, Any], list[float]]]] = (0, [])
        self._pending: list[int] = []  # the base class's suggestion ids not yet completed, oldest first (bug 4 above)
        self._keys = [k for k, v in self.config_space.items() if isinstance(v, Domain)]
        self.is_new: Callable[[dict[str, Any]], bool] = lambda config: True  # set by the search (bug 5 above)

    def _key(self, config: dict[str, Any]) -> tuple:
        """A configuration's hyperparameters (constants left out: the scheduler drops them at completion)."""
        return tuple(config.get(k) for k in self._keys)

    def suggest(self) -> dict | None:
        config = super().suggest()
        if config is not None:  # the base class has just registered it as pending under id len - 1
            self._pending = (self._pending + [len(self.trial_configs) - 1])[-self.max_pending :] if self.max_pending else []
        self.pending_trials = set(self._pending)
        return config

    def _training_points(self) -> list[tuple[dict[str, Any], list[float]]]:
        """The (configuration, objectives) pairs the GP is fitted on; X and Y both come from this one
        selection, made anew only when a trial has completed since the last one."""
        if self._training[0] != len(self._completed):
            self._training = (len(self._completed), self._select_training_points())
        return self._training[1]

    def _select_training_points(self) -> list[tuple[dict[str, Any], list[float]]]:
        """Every observation up to the cap; past it, every non-dominated one plus a seeded random
        sample of the others (the GP's cost grows with the cube of its training points)."""
        points = list(self._completed.values())
        if len(points) <= self.max_training_points:
            return points
        front = non_dominated(np.array([metrics for _, metrics in points], dtype=np.float64))
        keep = list(np.flatnonzero(front))[: self.max_training_points]
        others = np.flatnonzero(~front)
        keep += list(self.random_state.choice(others, size=min(len(others), self.max_training_points - len(keep)), replace=False))
        return [points[i] for i in sorted(keep)]

    def on_trial_complete(self, trial_id: int, config: dict[str, Any], metrics: list[float]) -> None:
        super().on_trial_complete(trial_id, config, metrics)
        self._completed[trial_id] = (dict(config), list(metrics))
        key = self._key(config)  # not trial_id: the Tuner's ids are not the base class's suggestion ids
        self._pending = [i for i in self._pending if self._key(self.trial_configs[i]) != key]
        self.pending_trials = set(self._pending)

    def objectives(self) -> np.ndarray:
        values = np.array([metrics for _, metrics in self._training_points()], dtype=np.float64)
        if len(values) == 0:
            return values.reshape(0, 0)
        low, high = values.min(0), values.max(0)
        normalised = (values - low) / np.where(high > low, high - low, 1.0)
        # negated by the base class: best -> 2 + 1 + margin, worst -> 2 + margin (above the reference 2)
        return normalised - (_BOTORCH_REFERENCE + 1.0 + REFERENCE_MARGIN)

    def _get_random_config(self) -> dict[str, Any]:
        return _seeded_sample_random_config(self.config_space, self.random_state)

    def _configs_with_results(self) -> list[dict]:
        return [config for config, _ in self._training_points()]

    def _sample_next_candidate(self) -> dict | None:
        from botorch.exceptions.errors import ModelFittingError  # heavy (botorch, gpytorch): only the EHVI scheduler needs them
        from linear_operator.utils.errors import NotPSDError

        default = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            return self._best_new_candidate()
        except (NotPSDError, ModelFittingError):  # as the base class: numerical trouble -> a random configuration
            return self._new_random_config()
        finally:
            torch.set_default_dtype(default)

    def _best_new_candidate(self) -> dict | None:
        """The base class's random-candidate acquisition optimisation, returning the best candidate
        that ``is_new`` accepts rather than the best one (bug 5 above)."""
        from botorch.acquisition.multi_objective import qLogExpectedHypervolumeImprovement  # heavy (botorch, gpytorch): only the EHVI scheduler needs them
        from botorch.fit import fit_gpytorch_mll
        from botorch.sampling import SobolQMCNormalSampler
        from botorch.utils.multi_objective.box_decompositions import NondominatedPartitioning
        from gpytorch.mlls.sum_marginal_log_likelihood import SumMarginalLogLikelihood

        X = self._config_to_feature_matrix(self._configs_with_results())
        Y = -torch.as_tensor(self.objectives())  # botorch maximises
        gp = self._make_gp(X_tensor=X, Y_tensor=Y)
        fit_gpytorch_mll(SumMarginalLogLikelihood(gp.likelihood, gp), max_attempts=1)
        pending = self._configs_pending() if self.pending_trials and self.fantasising else []
        reference = torch.full((Y.shape[1],), float(_BOTORCH_REFERENCE))
        acquisition = qLogExpectedHypervolumeImprovement(
            model=gp, ref_point=reference, partitioning=NondominatedPartitioning(ref_point=reference, Y=Y),
            sampler=SobolQMCNormalSampler(torch.Size([self.mc_samples])),
            X_pending=self._config_to_feature_matrix(pending) if pending else None,
        )
        dimensions = len(self._hp_ranges.get_ndarray_bounds())
        candidates = torch.as_tensor(self.random_state.rand(self.num_raw_samples, dimensions))  # seeded
        with torch.no_grad():
            values = acquisition(candidates[:, None, :])
        for index in torch.argsort(values, descending=True).tolist():
            config = self._config_from_ndarray(candidates[index].numpy())
            if self.is_new(config):
                return config
        return self._new_random_config()

    def _new_random_config(self) -> dict[str, Any]:
        for _ in range(100):
            config = self._get_random_config()
            if self.is_new(config):
                return config
        return config  # the space looks exhausted: NoRepeatScheduler decides


class RankedNonDominatedPriority(NonDominatedPriority):
    """MO-ASHA's priority as ranks. Syne Tune 0.16's ``NonDominatedPriority`` returns ``nondominated_sort``'s
    *order* (the indices of the items, best first) where its caller, ``Bracket.on_result``, expects each
    item's *rank*: with four trials of equal error and parameter ratios 1.0, 0.53, 0.65, 0.90 it gave the
    dominated 0.90 the best priority (0), so MO-ASHA continued it. Measured in a standard-NAS search on
    MRPC: 11 of 11 trials ran every epoch, none stopped. The order is turned into ranks here."""

    def priority_unsafe(self, objectives: np.ndarray) -> np.ndarray:
        order = np.asarray(super().priority_unsafe(objectives))
        ranks = np.empty(len(order), dtype=int)
        ranks[order] = np.arange(len(order))
        return ranks


class SeededMOASHA(MOASHA):
    def __init__(self, *args, points_to_evaluate: list[dict] | None = None, random_seed: int = 0, **kwargs) -> None:
        kwargs.setdefault("multiobjective_priority", RankedNonDominatedPriority())
        super().__init__(*args, random_seed=random_seed, **kwargs)
        self._points = list(points_to_evaluate or [])
        self._random_state = np.random.RandomState(random_seed)

    def suggest(self) -> TrialSuggestion | None:
        if self._points:
            return TrialSuggestion.start_suggestion(dict(self._points.pop(0)))
        return TrialSuggestion.start_suggestion(_seeded_sample_random_config(self.config_space, self._random_state))

    def on_trial_add(self, trial: Trial) -> None:
        sizes = np.array([len(b.rungs) for b in self.brackets])
        probabilities = np.e ** (sizes - sizes.max())
        index = self._random_state.choice(len(self.brackets), p=probabilities / probabilities.sum())
        self.trial_info[trial.trial_id] = self.brackets[index]

    def on_trial_error(self, trial: Trial) -> None:
        self.trial_info.pop(trial.trial_id, None)


class QuietTunerLogger(TunerLogger):
    """Syne Tune's Tuner prints a line per trial event, with the whole configuration (1164 values per
    trial in BERT-base's large space). syne-prune shows a progress bar and writes trials.csv instead,
    so only errors are printed."""

    _KEEP = {"print_error", "print_max_failures_reached", "print_failure_logs", "print_no_metrics_observed"}


for _name in dir(TunerLogger):
    if _name.startswith("print_") and _name not in QuietTunerLogger._KEEP:
        setattr(QuietTunerLogger, _name, lambda self, *args, **kwargs: None)


@contextmanager
def no_best_metric_table():
    """While tuning, skip the single-objective 'best trial' table the Tuner prints at the end."""
    original = tuner_module.print_best_metric_found
    tuner_module.print_best_metric_found = lambda *args, **kwargs: None
    try:
        yield
    finally:
        tuner_module.print_best_metric_found = original


def count_gpus() -> int:
    """GPUs that ``nvidia-smi --list-gpus`` lists (what Syne Tune counts), read from its output rather
    than from a file; 0 when nvidia-smi is missing, fails or takes more than 10 s."""
    try:
        listing = subprocess.run(["nvidia-smi", "--list-gpus"], capture_output=True, text=True, timeout=10,
                                 stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return len(listing.stdout.splitlines()) if listing.returncode == 0 else 0


class FixedLocalBackend(LocalBackend):
    """Syne Tune's ``LocalBackend`` (one process per trial) without the ``std.out`` it writes into the
    current directory when it counts GPUs, and whose trial processes get ``threads`` intra-op threads each
    (``OMP_NUM_THREADS``; Syne Tune relies on the 1 its import puts into the environment of every later child
    process, which syne_prune's import takes back: see ``syne_prune/__init__.py``). None: the environment's."""

    def __init__(self, *args: Any, threads: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.threads = threads

    def _allocate_gpu(self, trial_id: int, env: dict[str, Any]) -> None:
        if self.threads is not None:  # env is the trial process's environment (LocalBackend._schedule)
            env["OMP_NUM_THREADS"] = str(self.threads)
        super()._allocate_gpu(trial_id, env)

    def _prepare_for_schedule(self, num_gpus: int | None = None) -> None:
        if self.rotate_gpus and self.num_gpus is None and num_gpus is None:
            num_gpus = count_gpus()
            self.rotate_gpus = num_gpus > 0  # nothing to rotate: skip the "num_gpus_per_trial too large" warning
        super()._prepare_for_schedule(num_gpus)
