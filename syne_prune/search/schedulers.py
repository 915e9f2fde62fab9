"""The one registry of schedulers: name -> Syne Tune scheduler over a search space.

All minimise every objective. Each first evaluates the space's largest, smallest and midpoint
configurations. ``moasha`` is multi-fidelity (``fidelity`` = share of the validation batches seen in
weight-sharing search, epochs in standard NAS); the others use only a trial's final report.
"""
from __future__ import annotations

from typing import Any

from syne_tune.optimizer.scheduler import TrialScheduler
from syne_tune.optimizer.schedulers.multiobjective import MultiObjectiveRegularizedEvolution
from syne_tune.optimizer.schedulers.single_fidelity_scheduler import SingleFidelityScheduler

from syne_prune.errors import SynePruneError
from syne_prune.search.searchers import LocalSearchSearcher, NSGA2Searcher
from syne_prune.search.syne_tune_fixes import FixedEHVI, SeededMOASHA, SeededRandomSearcher
from syne_prune.search_spaces import SearchSpace

SCHEDULERS = ("random", "morea", "ehvi", "moasha", "nsga2", "local_search")
MULTI_FIDELITY = {"moasha"}
FIDELITY_ATTR = "fidelity"


def make_scheduler(
    name: str,
    space: SearchSpace,
    objectives: list[str],
    seed: int,
    constants: dict[str, Any],
    max_fidelity: int = 1,
) -> TrialScheduler:
    if name not in SCHEDULERS:
        raise SynePruneError(f"unknown scheduler '{name}'; choose one of {', '.join(SCHEDULERS)}")
    config_space = {**space.config_space, **constants}
    points = [dict(point, **constants) for point in space.initial_points()]
    if name == "moasha":
        return SeededMOASHA(
            config_space, metrics=objectives, do_minimize=True, time_attr=FIDELITY_ATTR, max_t=max_fidelity,
            grace_period=1, reduction_factor=3, points_to_evaluate=points, random_seed=seed,
        )
    searchers = {
        "random": lambda: SeededRandomSearcher(config_space, points_to_evaluate=points, random_seed=seed),
        "morea": lambda: MultiObjectiveRegularizedEvolution(
            config_space, points_to_evaluate=points, population_size=10, sample_size=5, random_seed=seed
        ),
        # random acquisition optimisation: ~10x cheaper per suggestion than gradient-based (syne-tune-0.16.md)
        "ehvi": lambda: FixedEHVI(config_space, points_to_evaluate=points, random_seed=seed, optimization_strategy="random"),
        "nsga2": lambda: NSGA2Searcher(config_space, points_to_evaluate=points, random_seed=seed),
        "local_search": lambda: LocalSearchSearcher(config_space, points_to_evaluate=points, random_seed=seed),
    }
    return SingleFidelityScheduler(config_space, metrics=objectives, do_minimize=True, searcher=searchers[name](), random_seed=seed)
