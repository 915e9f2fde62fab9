"""Extending syne-prune with a backend: ``local-quiet``, a process per trial like ``local`` but each trial process on
one torch thread whatever the number of cores, for a machine shared with other work. In the package: a module in
``syne_prune/search/backends/`` and one class in the tuple of ``BACKENDS`` (``syne_prune/search/backends/__init__.py``);
here it is registered in-process and a search runs on it."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pandas as pd

# --8<-- [start:backend]
from syne_prune.search import BACKENDS
from syne_prune.search.backends.local import LocalSearchBackend
from syne_prune.search.syne_tune_fixes import FixedLocalBackend


class QuietLocalBackend(LocalSearchBackend):
    """``--backend local-quiet``: Syne Tune's LocalBackend (with syne-prune's fixes), one torch thread per trial process."""

    name = "local-quiet"

    def _make_trial_backend(self, part_dir: Path):
        return FixedLocalBackend(entry_point=self.entry_point or self.kind.entry_point, threads=1)


BACKENDS[QuietLocalBackend.name] = QuietLocalBackend
# --8<-- [end:backend]


def main() -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from tiny import tiny_supernet

    from syne_prune.search import SearchConfig, WeightSharingSettings, run_search

    root = Path(tempfile.mkdtemp())
    supernet = tiny_supernet(root)
    # --8<-- [start:run]
    run_search(SearchConfig(output=str(root / "search"), trial_settings=WeightSharingSettings(str(supernet)),
                            backend="local-quiet", scheduler="random", n_workers=1, max_trials=2), progress=False)
    # --8<-- [end:run]
    trials = pd.read_csv(root / "search" / "trials.csv")
    assert len(trials) == 2 and (trials["status"] == "completed").all(), trials
    print(f"local-quiet: {len(trials)} trials, one process each")


if __name__ == "__main__":
    main()
