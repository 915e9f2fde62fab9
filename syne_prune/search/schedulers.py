"""The one registry of schedulers: name -> Syne Tune scheduler over a search space.

All minimise every objective. Each first evaluates the space's largest, smallest and midpoint
configurations. ``moasha`` is multi-fidelity (``fidelity`` = share of the validation batches seen in
weight-sharing search, epochs in standard NAS); the others use only a trial's final report.
"""
from __future__ import annotations

from typing import Any, Callable

from syne_tune.optimizer.scheduler import TrialScheduler
from syne_tune.optimizer.schedulers.multiobjective import MultiObjectiveRegularizedEvolution
from syne_tune.optimizer.schedulers.searchers.searcher import BaseSearcher
from syne_tune.optimizer.schedulers.single_fidelity_scheduler import SingleFidelityScheduler

from syne_prune.errors import SynePruneError
from syne_prune.search.searchers import LocalSearchSearcher, NSGA2Searcher
from syne_prune.search.syne_tune_fixes import FixedEHVI, SeededMOASHA, SeededRandomSearcher
from syne_prune.search_spaces import SearchSpace

SchedulerFactory = Callable[[dict[str, Any], list[dict[str, Any]], list[str], int, int], TrialScheduler]
"""Builds a scheduler from (config space with the constants, initial points, objectives, seed, max fidelity)."""

MULTI_FIDELITY = {"moasha"}
FIDELITY_ATTR = "fidelity"


def single_fidelity(make_searcher: Callable[[dict[str, Any], list[dict[str, Any]], int], BaseSearcher]) -> SchedulerFactory:
    """A scheduler factory that drives the Syne Tune searcher ``make_searcher(config_space, points_to_evaluate, seed)``
    on every objective (minimised), using only a trial's final report: how a searcher joins ``SCHEDULERS``."""

    def factory(config_space, points, objectives, seed, max_fidelity):
        return SingleFidelityScheduler(config_space, metrics=objectives, do_minimize=True,
                                       searcher=make_searcher(config_space, points, seed), random_seed=seed)

    return factory


def _moasha(config_space, points, objectives, seed, max_fidelity) -> TrialScheduler:
    return SeededMOASHA(config_space, metrics=objectives, do_minimize=True, time_attr=FIDELITY_ATTR, max_t=max_fidelity,
                        grace_period=1, reduction_factor=3, points_to_evaluate=points, random_seed=seed)


SCHEDULERS: dict[str, SchedulerFactory] = {
    "random": single_fidelity(lambda space, points, seed: SeededRandomSearcher(space, points_to_evaluate=points, random_seed=seed)),
    "morea": single_fidelity(lambda space, points, seed: MultiObjectiveRegularizedEvolution(
        space, points_to_evaluate=points, population_size=10, sample_size=5, random_seed=seed)),
    # random acquisition optimisation: ~10x cheaper per suggestion than gradient-based (syne-tune-0.16.md)
    "ehvi": single_fidelity(lambda space, points, seed: FixedEHVI(space, points_to_evaluate=points, random_seed=seed,
                                                                   optimization_strategy="random")),
    "moasha": _moasha,
    "nsga2": single_fidelity(lambda space, points, seed: NSGA2Searcher(space, points_to_evaluate=points, random_seed=seed)),
    "local_search": single_fidelity(lambda space, points, seed: LocalSearchSearcher(space, points_to_evaluate=points, random_seed=seed)),
}
"""The registry: the ``--scheduler`` name -> its factory. A new scheduler is one entry here."""


def make_scheduler(
    name: str,
    space: SearchSpace,
    objectives: list[str],
    seed: int,
    constants: dict[str, Any],
    max_fidelity: int = 1,
) -> TrialScheduler:
    """The scheduler registered as ``name`` over ``space`` (plus the ``constants`` every trial gets), minimising
    ``objectives``, seeded with ``seed``, starting with the space's largest, smallest and midpoint configurations;
    ``max_fidelity``: the resource of a finished trial (multi-fidelity schedulers). Raises SynePruneError (one line,
    listing the registered names) for an unknown name."""
    if name not in SCHEDULERS:
        raise SynePruneError(f"unknown scheduler '{name}'; choose one of {', '.join(SCHEDULERS)}")
    config_space = {**space.config_space, **constants}
    points = [dict(point, **constants) for point in space.initial_points()]
    return SCHEDULERS[name](config_space, points, objectives, seed, max_fidelity)
