"""``--backend local``: one process per trial (Syne Tune's LocalBackend, with its fixes), running the trial
kind's entry point (``search/trial.py`` or ``search/finetune.py``)."""
from __future__ import annotations

import os
from pathlib import Path

import torch
from syne_tune.backend.trial_backend import TrialBackend

from syne_prune.cores import threads_per_worker
from syne_prune.devices import default_device
from syne_prune.search.backends.base import SearchBackend
from syne_prune.search.syne_tune_fixes import FixedLocalBackend


def trial_threads(n_workers: int) -> int | None:
    """Threads for each trial process of ``n_workers``: ``cores // n_workers`` (at least 1); None (the environment's)
    when the user set ``OMP_NUM_THREADS``."""
    return None if "OMP_NUM_THREADS" in os.environ else threads_per_worker(n_workers)


def rotates_gpus(device: torch.device) -> bool:
    """Whether trial processes get the visible GPUs in turn (Syne Tune's ``rotate_gpus``): on ``cuda``, not on the CPU
    and not on one named GPU (``cuda:N``, which every trial uses)."""
    return device.type == "cuda" and device.index is None


class LocalSearchBackend(SearchBackend):
    """A process per trial; a trial that trains keeps its weights in its Syne Tune checkpoint folder. Each trial
    process gets ``cores // n_workers`` threads, as a pool worker does, unless the user set ``OMP_NUM_THREADS``.
    On GPUs, Syne Tune gives the trial processes the visible GPUs in turn (``rotate_gpus``; each sees one, as
    ``cuda``), unless the run's device is one named GPU (``--device cuda:N``), which every trial then uses."""

    name = "local"

    def _make_trial_backend(self, part_dir: Path) -> TrialBackend:
        return FixedLocalBackend(entry_point=self.entry_point or self.kind.entry_point, threads=trial_threads(self.config.n_workers),
                                 rotate_gpus=rotates_gpus(default_device()))
