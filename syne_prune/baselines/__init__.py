"""The paper's baselines for structural pruning of a fine-tuned model (Klein et al., arXiv 2405.02267, section 6):
retraining-free pruning (``rfp``, Kwon et al. 2022), layer dropping (``layer-drop``, Sajjad et al. 2022) and head
pruning (``head-prune``, Michel et al. 2019). One module per method; ``METHODS`` is the registry the CLI
(``syne-prune prune --method``) and ``prune`` read."""
from __future__ import annotations

from syne_prune.baselines.common import Budget, Method, PruneContext, Pruned, PruneSettings
from syne_prune.baselines.methods import METHODS, get_method
from syne_prune.baselines.run import RESULTS_FILE, BudgetResult, parse_budgets, prune, smallest_ratio

__all__ = ["METHODS", "RESULTS_FILE", "Budget", "BudgetResult", "Method", "PruneContext", "PruneSettings", "Pruned", "get_method",
           "parse_budgets", "prune", "smallest_ratio"]
