"""``--backend pool``: ``n_workers`` persistent processes that load the shared super-network once
(``syne_prune.search.pool.PoolBackend``); weight-sharing trials only."""
from __future__ import annotations

from pathlib import Path

from syne_tune.backend.trial_backend import TrialBackend

from syne_prune.errors import SynePruneError
from syne_prune.search import trial
from syne_prune.search.backends.base import SearchBackend
from syne_prune.search.pool import PoolBackend


class PoolSearchBackend(SearchBackend):
    """Workers started before the Tuner runs and closed after it; the Tuner sleeps until a worker reports."""

    name = "pool"

    @classmethod
    def check_kind(cls, kind) -> None:
        if kind.trains_per_trial:
            raise SynePruneError("--backend pool shares one super-network between trials; standard NAS trains a network per trial: use --backend local")

    def _make_trial_backend(self, part_dir: Path) -> TrialBackend:
        return PoolBackend(self.prepared.trial_settings, self.config.n_workers, part_dir / "pool",
                           entry_point=trial.__file__, trial_timeout_s=self.config.trial_timeout_s)

    def start(self, progress: bool) -> None:
        self.trial_backend.start(progress)

    def close(self) -> None:
        self.trial_backend.close()

    def wait(self, timeout: float) -> None:
        self.trial_backend.wait(timeout)
