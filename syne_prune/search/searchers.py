"""NSGA-II and local search as Syne Tune searchers (Syne Tune 0.16 ships neither).

Both first evaluate the given initial points, never suggest a configuration they have already
suggested (while the space has new ones), and minimise every objective.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from syne_tune.config_space import Categorical, Domain, Integer
from syne_tune.optimizer.schedulers.searchers.searcher import BaseSearcher

from syne_prune.pareto import non_dominated

MAX_DRAWS = 100


def _domains(config_space: dict[str, Any]) -> dict[str, Domain]:
    return {k: v for k, v in config_space.items() if isinstance(v, Domain)}


def _key(config: dict[str, Any], names) -> tuple:
    return tuple(int(config[n]) for n in names)


class _DedupSearcher(BaseSearcher):
    """Shared bookkeeping: initial points first, no repeated suggestion, observations by trial id."""

    def __init__(self, config_space: dict[str, Any], points_to_evaluate: list[dict] | None = None, random_seed: int | None = None):
        super().__init__(config_space, points_to_evaluate=points_to_evaluate, random_seed=random_seed)
        self.domains = _domains(config_space)
        self.names = list(self.domains)
        self.random_state = np.random.RandomState(self.random_seed)
        self.seen: set[tuple] = set()
        self.observations: dict[int, tuple[dict[str, Any], list[float]]] = {}

    def _random_config(self) -> dict[str, Any]:
        return {n: d.sample(random_state=self.random_state) for n, d in self.domains.items()}

    def _propose(self) -> dict[str, Any] | None:
        raise NotImplementedError

    def suggest(self) -> dict[str, Any] | None:
        config = self._next_points_to_evaluate()
        for draw in range(2 * MAX_DRAWS):
            if config is not None and _key(config, self.names) not in self.seen:
                break
            # a neighbourhood (or generation) with nothing new left: restart from random configurations
            config = self._propose() if draw < MAX_DRAWS else self._random_config()
        else:
            return None  # the space looks exhausted
        self.seen.add(_key(config, self.names))
        return config

    def on_trial_complete(self, trial_id: int, config: dict[str, Any], metrics: list[float]) -> None:
        self.observations[trial_id] = ({n: config[n] for n in self.names}, list(metrics))
        self.seen.add(_key(config, self.names))


class NSGA2Searcher(_DedupSearcher):
    """NSGA-II (pymoo) made asynchronous: offspring are handed out one per suggestion; once a
    population's worth of results has arrived they are told to pymoo together, which selects the
    next parents by non-dominated sorting and crowding distance. Idle workers get further offspring
    of the current parents instead of waiting for a generation's stragglers."""

    def __init__(self, config_space, points_to_evaluate=None, random_seed=None, population_size: int = 20):
        super().__init__(config_space, points_to_evaluate, random_seed)
        from pymoo.algorithms.moo.nsga2 import NSGA2  # heavy (pymoo): only the NSGA-II searcher needs it
        from pymoo.core.problem import Problem
        from pymoo.operators.crossover.sbx import SBX
        from pymoo.operators.mutation.pm import PM
        from pymoo.operators.repair.rounding import RoundingRepair
        from pymoo.operators.sampling.rnd import IntegerRandomSampling

        lower = [0 if isinstance(d, Categorical) else d.lower for d in self.domains.values()]
        upper = [len(d.categories) - 1 if isinstance(d, Categorical) else d.upper for d in self.domains.values()]
        self.population_size = population_size
        self._algorithm = NSGA2(
            pop_size=population_size,
            sampling=IntegerRandomSampling(),
            crossover=SBX(prob=0.9, eta=15, vtype=float, repair=RoundingRepair()),
            mutation=PM(eta=20, vtype=float, repair=RoundingRepair()),
            eliminate_duplicates=True,
        )
        self._problem = Problem(n_var=len(lower), n_obj=1, xl=np.array(lower, float), xu=np.array(upper, float), vtype=int)
        self._setup_done = False
        self._queue: list[np.ndarray] = []
        self._told: set[int] = set()

    def _encode(self, config: dict[str, Any]) -> np.ndarray:
        return np.array(
            [d.categories.index(config[n]) if isinstance(d, Categorical) else int(config[n]) for n, d in self.domains.items()],
            dtype=float,
        )

    def _decode(self, x: np.ndarray) -> dict[str, Any]:
        return {
            n: d.categories[int(round(v))] if isinstance(d, Categorical) else int(round(v))
            for (n, d), v in zip(self.domains.items(), x)
        }

    def _propose(self) -> dict[str, Any]:
        if not self._setup_done:
            return self._random_config()  # before the first population of results is told
        if not self._queue:
            self._queue = list(self._algorithm.ask().get("X"))
        return self._decode(self._queue.pop(0))

    def on_trial_complete(self, trial_id, config, metrics) -> None:
        super().on_trial_complete(trial_id, config, metrics)
        fresh = [t for t in self.observations if t not in self._told]
        if len(fresh) >= self.population_size:
            self._tell(fresh)

    def _tell(self, trial_ids: list[int]) -> None:
        from pymoo.core.population import Population  # heavy (pymoo), as above

        configs = [self.observations[t][0] for t in trial_ids]
        objectives = np.array([self.observations[t][1] for t in trial_ids], dtype=float)
        if not self._setup_done:
            self._problem.n_obj = objectives.shape[1]
            self._algorithm.setup(self._problem, termination=("n_gen", 10**9), seed=int(self.random_seed % 2**31))
            self._algorithm.ask()  # pymoo wants one ask before the first tell
            self._setup_done = True
        population = Population.new("X", np.array([self._encode(c) for c in configs]))
        population.set("F", objectives)
        self._algorithm.tell(infills=population)
        self._told.update(trial_ids)
        self._queue = []  # offspring of the old parents are stale now


class LocalSearchSearcher(_DedupSearcher):
    """Multi-objective local search: mutate one hyperparameter of a random member of the current
    Pareto front. Counts move by about ±10% of their range; bit-mask words of the large space flip one
    bit; {0, 1} choices flip."""

    def _propose(self) -> dict[str, Any]:
        if not self.observations:
            return self._random_config()
        configs = [c for c, _ in self.observations.values()]
        front = np.flatnonzero(non_dominated(np.array([m for _, m in self.observations.values()], dtype=float)))
        parent = dict(configs[int(self.random_state.choice(front))])
        name = self.names[self.random_state.randint(len(self.names))]
        domain = self.domains[name]
        if isinstance(domain, Categorical):
            others = [c for c in domain.categories if c != parent[name]]
            parent[name] = others[self.random_state.randint(len(others))]
        elif isinstance(domain, Integer) and domain.upper - domain.lower >= 2**16:
            width = int(np.log2(domain.upper + 1))
            parent[name] = int(parent[name]) ^ (1 << int(self.random_state.randint(width)))
        else:
            step = max(1, int(round(0.1 * (domain.upper - domain.lower))))
            moved = int(parent[name]) + int(self.random_state.randint(-step, step + 1))
            parent[name] = int(np.clip(moved, domain.lower, domain.upper))
        return parent
