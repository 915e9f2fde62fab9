"""``--backend pool``: ``n_workers`` persistent processes that load the shared super-network once; weight-sharing
trials only. On a GPU machine it starts ``workers_per_gpu`` workers per visible GPU unless ``--n-workers`` says
otherwise, each pinned to its GPU (``devices.gpu_assignment``, ``devices.worker_environment``).

Modules: ``workers`` (``PoolBackend``, the Syne Tune trial backend that starts and feeds the workers) and
``worker`` (what one worker process runs: ``python -m syne_prune.search.backends.pool.worker``).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from syne_tune.backend.trial_backend import TrialBackend

from syne_prune.devices import default_device, default_workers, worker_gpus
from syne_prune.errors import SynePruneError
from syne_prune.options import add_option
from syne_prune.search import trial
from syne_prune.search.backends.base import SearchBackend
from syne_prune.search.backends.pool.workers import PoolBackend


@dataclass(frozen=True)
class PoolSettings:
    """How the pool treats its workers: a trial running longer than ``trial_timeout_s`` seconds (None: no limit)
    is stopped and failed, and its worker restarted. On GPUs, without ``--n-workers``, ``workers_per_gpu`` workers
    run on each visible GPU."""

    trial_timeout_s: float | None = 1800.0
    workers_per_gpu: int = 1

    def check(self) -> None:
        if self.trial_timeout_s is not None and not self.trial_timeout_s > 0:
            raise SynePruneError(f"--trial-timeout must be positive seconds, got {self.trial_timeout_s}")
        if not isinstance(self.workers_per_gpu, int) or self.workers_per_gpu < 1:
            raise SynePruneError(f"--workers-per-gpu must be a positive integer, got {self.workers_per_gpu}")


class PoolSearchBackend(SearchBackend):
    """Workers started before the Tuner runs and closed after it; the Tuner sleeps until a worker reports."""

    name = "pool"
    settings_type = PoolSettings

    @classmethod
    def add_options(cls, parser: argparse.ArgumentParser) -> None:
        add_option(parser, PoolSettings, "trial_timeout_s", "pool backend: a trial running longer is stopped and failed, its worker "
                   "restarted (seconds)", flag="--trial-timeout", metavar="SECONDS")
        add_option(parser, PoolSettings, "workers_per_gpu", "pool backend on GPUs: workers per visible GPU when --n-workers "
                   "is not given, each pinned to its GPU")

    @classmethod
    def settings_from_args(cls, args: argparse.Namespace, chosen: bool) -> PoolSettings | None:
        return PoolSettings(trial_timeout_s=args.trial_timeout_s, workers_per_gpu=args.workers_per_gpu) if chosen else None

    @classmethod
    def default_n_workers(cls, config) -> int:
        """``workers_per_gpu`` per GPU of the run's device (``devices.worker_gpus``), or the CPU default."""
        settings = config.backend_settings if isinstance(config.backend_settings, PoolSettings) else PoolSettings()
        return default_workers(len(worker_gpus(default_device())), max(1, settings.workers_per_gpu), super().default_n_workers(config))

    @classmethod
    def check_kind(cls, kind) -> None:
        if kind.trains_per_trial:
            raise SynePruneError("--backend pool shares one super-network between trials; standard NAS trains a network per trial: use --backend local")

    @classmethod
    def check(cls, config) -> None:
        super().check(config)
        (config.backend_settings or PoolSettings()).check()

    def _make_trial_backend(self, part_dir: Path) -> TrialBackend:
        settings = self.config.backend_settings or PoolSettings()
        return PoolBackend(self.prepared.trial_settings, self.config.n_workers, part_dir / "pool",
                           entry_point=trial.__file__, trial_timeout_s=settings.trial_timeout_s, device=default_device())

    def start(self, progress: bool) -> None:
        self.trial_backend.start(progress)

    def close(self) -> None:
        self.trial_backend.close()

    def wait(self, timeout: float) -> None:
        self.trial_backend.wait(timeout)
