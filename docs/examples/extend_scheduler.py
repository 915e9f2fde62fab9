"""Extending syne-prune with a scheduler: a greedy searcher that mutates the sub-network with the lowest error so far
(one hyperparameter at a time), registered as ``--scheduler greedy``. In the package: the searcher in
``syne_prune/search/searchers.py`` and one entry in ``SCHEDULERS`` of ``syne_prune/search/schedulers.py``; here the
entry is added in-process and a search runs with it on a tiny super-network."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

# --8<-- [start:searcher]
import numpy as np
import pandas as pd
from syne_tune.config_space import Domain
from syne_tune.optimizer.schedulers.searchers.searcher import BaseSearcher

from syne_prune.search import SCHEDULERS, single_fidelity


class GreedySearcher(BaseSearcher):
    """The initial points first (largest, smallest, midpoint), then one hyperparameter of the best trial so far
    (lowest first objective, the error) redrawn at random."""

    def __init__(self, config_space, points_to_evaluate=None, random_seed=None):
        super().__init__(config_space, points_to_evaluate=points_to_evaluate, random_seed=random_seed)
        self.domains = {name: d for name, d in config_space.items() if isinstance(d, Domain)}
        self.random_state = np.random.RandomState(random_seed)
        self.best: tuple[float, dict] | None = None

    def suggest(self):
        config = self._next_points_to_evaluate()
        if config is not None:
            return config
        if self.best is None:
            return {name: d.sample(random_state=self.random_state) for name, d in self.domains.items()}
        config = dict(self.best[1])
        name = list(self.domains)[self.random_state.randint(len(self.domains))]
        config[name] = self.domains[name].sample(random_state=self.random_state)
        return config

    def on_trial_complete(self, trial_id, config, metrics):
        if self.best is None or metrics[0] < self.best[0]:
            self.best = (metrics[0], {name: config[name] for name in self.domains})


SCHEDULERS["greedy"] = single_fidelity(lambda space, points, seed: GreedySearcher(space, points, seed))
# --8<-- [end:searcher]


def main() -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from tiny import tiny_supernet

    from syne_prune.search import SearchConfig, WeightSharingSettings, run_search

    root = Path(tempfile.mkdtemp())
    supernet = tiny_supernet(root)
    # --8<-- [start:run]
    run_search(SearchConfig(output=str(root / "search"), trial_settings=WeightSharingSettings(str(supernet)),
                            scheduler="greedy", n_workers=1, max_trials=8), progress=False)
    # --8<-- [end:run]
    trials = pd.read_csv(root / "search" / "trials.csv")
    assert len(trials) == 8 and (trials["status"] == "completed").all(), trials
    print(f"greedy: {len(trials)} trials, best error {trials['error'].min():.3f}")


if __name__ == "__main__":
    main()
