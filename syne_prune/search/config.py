"""A search's settings (``SearchConfig``): the generic ones (scheduler, objectives, budget, data, test split) and
the *names* of the trial kind and the backend, each with its own settings object (``trial_settings``,
``backend_settings``), which only that plugin reads and checks. Defaults that depend on the trial kind or the
backend come from their registries (``kinds``, ``backends``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from syne_prune.data import EVAL_BATCH_SIZE
from syne_prune.errors import SynePruneError
from syne_prune.search.backends import BACKENDS, DEFAULT_N_WORKERS, get_backend
from syne_prune.search.kinds import TrialKind, get_trial_kind
from syne_prune.search.protocol import OBJECTIVES
from syne_prune.search.schedulers import MULTI_FIDELITY, SCHEDULERS

TEST_SPLITS = ("pareto", "every-trial")  # which trials are scored on the test split (GLUE dev), which the search never uses


@dataclass
class SearchConfig:
    """A search. ``trial_kind`` names a registered kind of trial (``kinds.TRIAL_KINDS``) and ``trial_settings`` holds
    its settings (its ``settings_type``: ``WeightSharingSettings`` for weight-sharing, ``FineTuneSettings`` for
    standard NAS); ``backend`` names a registered backend (``backends.BACKENDS``; default: the trial kind's) and
    ``backend_settings`` holds its settings (``PoolSettings``, ``SageMakerSettings``; None: its defaults, where
    it has any)."""

    output: str
    trial_settings: Any
    trial_kind: str = "weight-sharing"
    scheduler: str | None = None  # default: the trial kind's (ehvi: weight-sharing, moasha: standard)
    objectives: tuple[str, ...] = ("error", "params")
    backend: str | None = None  # default: the trial kind's (pool: weight-sharing, local: standard)
    backend_settings: Any = None
    n_workers: int | None = None  # default: the backend's (2; the pool on GPUs: workers_per_gpu per GPU)
    max_trials: int | None = None
    max_wallclock_s: float | None = None
    seed: int = 0
    data_dir: str | None = None
    eval_batch_size: int = EVAL_BATCH_SIZE
    max_eval_examples: int | None = None
    test_split: str | None = None  # default: pareto (scored after the search); every-trial on SageMaker and in standard NAS
    reproducible: bool = False  # synchronous batches, results to the scheduler in trial order (search/in_order.py)

    def __post_init__(self) -> None:
        kind = self.kind
        if self.scheduler is None:
            self.scheduler = kind.default_scheduler
        if self.n_workers is None:
            backend = BACKENDS.get(self.backend or kind.default_backend)
            self.n_workers = backend.default_n_workers(self) if backend is not None else DEFAULT_N_WORKERS
        if self.backend is None:
            self.backend = kind.default_backend
        if self.test_split is None:
            backend = BACKENDS.get(self.backend)  # an unknown one is refused by check()
            self.test_split = (backend.default_test_split if backend is not None else None) or kind.default_test_split

    @property
    def kind(self) -> TrialKind:
        """The registered trial kind called ``trial_kind``; raises SynePruneError (one line) for an unknown name."""
        return get_trial_kind(self.trial_kind)

    def check(self) -> None:
        """Every setting, offline, before anything is written; raises a one-line SynePruneError."""
        self.kind.check(self)
        backend = get_backend(self.backend)
        backend.check_kind(self.kind)
        if self.scheduler not in SCHEDULERS:
            raise SynePruneError(f"unknown scheduler '{self.scheduler}'; choose one of {', '.join(SCHEDULERS)}")
        unknown = [o for o in self.objectives if o not in OBJECTIVES]
        if unknown:
            raise SynePruneError(f"unknown objective(s) {', '.join(unknown)}; choose from {', '.join(OBJECTIVES)}")
        if "error" not in self.objectives or len(self.objectives) < 2 or len(set(self.objectives)) != len(self.objectives):
            raise SynePruneError("--objectives must list error and at least one size objective (params, macs, latency), each once, e.g. error,params")
        backend.check(self)
        self._check_budget()
        if self.test_split not in TEST_SPLITS:
            raise SynePruneError(f"unknown --test-split '{self.test_split}'; choose one of {', '.join(TEST_SPLITS)}")
        self.kind.check_test_split(self)
        if self.eval_batch_size < 1:
            raise SynePruneError("--fidelity-levels and --eval-batch-size must be positive")

    def _check_budget(self) -> None:
        if self.n_workers < 1:
            raise SynePruneError(f"--n-workers must be at least 1, got {self.n_workers}")
        if self.reproducible and self.n_workers > 1 and self.scheduler in MULTI_FIDELITY:
            raise SynePruneError(f"--reproducible with {self.scheduler}: its stopping decisions follow the order in which results arrive; "
                                 "use --n-workers 1 for a reproducible search with it, or another scheduler")
        if self.max_trials is None and self.max_wallclock_s is None:
            raise SynePruneError("give a budget: --max-trials N and/or --max-wallclock SECONDS")
        if self.max_trials is not None and self.max_trials < 1:
            raise SynePruneError(f"--max-trials must be at least 1, got {self.max_trials}")
        if self.max_wallclock_s is not None and not self.max_wallclock_s > 0:
            raise SynePruneError(f"--max-wallclock must be positive seconds, got {self.max_wallclock_s}")

    @property
    def max_fidelity(self) -> int:
        """The resource of a finished trial: epochs (standard NAS), else validation chunks seen (MO-ASHA) or 1."""
        return self.kind.max_fidelity(self)
