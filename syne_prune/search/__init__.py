"""Multi-objective search over sub-networks with Syne Tune."""
from __future__ import annotations

from syne_prune.search.run import SearchConfig, run_search
from syne_prune.search.schedulers import SCHEDULERS, make_scheduler

__all__ = ["SCHEDULERS", "SearchConfig", "make_scheduler", "run_search"]
