"""Extending syne-prune with a kind of trial: ``weight-sharing-audit``, weight-sharing trials that score every trial
on the test split too (``trials.csv`` gets a ``test_error`` per trial) and default to random search, for studies of
how validation and test agree. A kind that does something else per trial overrides ``entry_point`` (the trial's
script), ``settings_type`` with ``add_options`` / ``settings_from_args``, ``prepare`` and ``export_source`` (see
``syne_prune/search/kinds/base.py``). In the package: a module in ``syne_prune/search/kinds/`` and one instance in the
tuple of ``TRIAL_KINDS`` (``syne_prune/search/kinds/__init__.py``); here it is registered in-process and a search runs."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pandas as pd

# --8<-- [start:kind]
from syne_prune.search import TRIAL_KINDS
from syne_prune.search.kinds.weight_sharing import WeightSharing


class AuditWeightSharing(WeightSharing):
    """Weight-sharing trials, each also scored on the test split; random search unless told otherwise."""

    name = "weight-sharing-audit"
    default_scheduler = "random"
    default_test_split = "every-trial"


TRIAL_KINDS[AuditWeightSharing.name] = AuditWeightSharing()
# --8<-- [end:kind]


def main() -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from tiny import tiny_supernet

    from syne_prune.search import SearchConfig, WeightSharingSettings, run_search

    root = Path(tempfile.mkdtemp())
    supernet = tiny_supernet(root)
    # --8<-- [start:run]
    run_search(SearchConfig(output=str(root / "search"), trial_kind="weight-sharing-audit",
                            trial_settings=WeightSharingSettings(str(supernet)), n_workers=1, max_trials=5), progress=False)
    # --8<-- [end:run]
    trials = pd.read_csv(root / "search" / "trials.csv")
    assert len(trials) == 5 and trials["test_error"].notna().all(), trials
    print(f"weight-sharing-audit: {len(trials)} trials, each with a test error")


if __name__ == "__main__":
    main()
