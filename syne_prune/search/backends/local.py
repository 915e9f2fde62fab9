"""``--backend local``: one process per trial (Syne Tune's LocalBackend, with its fixes), running the trial
kind's entry point (``search/trial.py`` or ``search/finetune.py``)."""
from __future__ import annotations

from pathlib import Path

from syne_tune.backend.trial_backend import TrialBackend

from syne_prune.search.backends.base import SearchBackend
from syne_prune.search.pool import threads_per_worker
from syne_prune.search.syne_tune_fixes import FixedLocalBackend


class LocalSearchBackend(SearchBackend):
    """A process per trial; a trial that trains keeps its weights in its Syne Tune checkpoint folder. Each trial
    process gets ``cores // n_workers`` threads, as a pool worker does."""

    name = "local"

    def _make_trial_backend(self, part_dir: Path) -> TrialBackend:
        return FixedLocalBackend(entry_point=self.entry_point or self.kind.entry_point, threads=threads_per_worker(self.config.n_workers))
