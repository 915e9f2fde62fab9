"""Multi-objective search over sub-networks with Syne Tune."""
from __future__ import annotations

from syne_prune.search.run import SearchConfig, run_search
from syne_prune.search.schedulers import SCHEDULERS, make_scheduler
from syne_prune.search.scheduling import NoRepeatScheduler, subnetwork_key

__all__ = ["SCHEDULERS", "NoRepeatScheduler", "SearchConfig", "make_scheduler", "run_search", "subnetwork_key"]
