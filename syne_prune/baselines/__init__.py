"""The paper's baselines for structural pruning of a fine-tuned model (Klein et al., arXiv 2405.02267, section 6):
retraining-free pruning (``rfp``, Kwon et al. 2022), layer dropping (``layer-drop``, Sajjad et al. 2022) and head
pruning (``head-prune``, Michel et al. 2019). One module per method; ``METHODS`` is the registry the CLI
(``syne-prune prune --method``) and ``prune`` read."""
from __future__ import annotations

from syne_prune.baselines import head_prune, layer_drop, rfp
from syne_prune.baselines.common import Budget, Method, PruneContext, Pruned, PruneSettings
from syne_prune.baselines.run import RESULTS_FILE, BudgetResult, parse_budgets, prune, smallest_ratio
from syne_prune.errors import SynePruneError

METHODS: dict[str, Method] = {m.name: m for m in (rfp.METHOD, layer_drop.METHOD, head_prune.METHOD)}


def get_method(name: str) -> Method:
    """The registered method called ``name``; a one-line SynePruneError naming the choices otherwise."""
    if name not in METHODS:
        raise SynePruneError(f"unknown pruning method '{name}'; choose one of {', '.join(METHODS)}")
    return METHODS[name]


__all__ = ["METHODS", "RESULTS_FILE", "Budget", "BudgetResult", "Method", "PruneContext", "PruneSettings", "Pruned", "get_method",
           "parse_budgets", "prune", "smallest_ratio"]
