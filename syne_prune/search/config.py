"""A search's settings (``SearchConfig``): which kind of trial, where the trials run, the scheduler, the budget.
Defaults that depend on the kind of trial or the backend come from their registries (``kinds``, ``backends``)."""
from __future__ import annotations

from dataclasses import dataclass

from syne_prune.data import EVAL_BATCH_SIZE
from syne_prune.errors import SynePruneError
from syne_prune.search.backends import BACKENDS, get_backend
from syne_prune.search.finetune import FineTuneSettings
from syne_prune.search.kinds import TRIAL_KINDS, TrialKind, get_trial_kind
from syne_prune.search.protocol import OBJECTIVES
from syne_prune.search.sagemaker.settings import SageMakerSettings
from syne_prune.search.schedulers import MULTI_FIDELITY, SCHEDULERS

MODES = tuple(TRIAL_KINDS)  # the --mode values: the registered kinds of trial
TEST_SPLITS = ("pareto", "every-trial")  # which trials are scored on the test split (GLUE dev), which the search never uses


@dataclass
class SearchConfig:
    """A search. Weight-sharing: give ``supernet``. Standard NAS: give ``finetune`` (and supernet=None)."""

    supernet: str | None
    output: str
    scheduler: str | None = None  # default: the trial kind's (ehvi: weight-sharing, moasha: standard)
    objectives: tuple[str, ...] = ("error", "params")
    backend: str | None = None  # default: the trial kind's (pool: weight-sharing, local: standard)
    n_workers: int = 2
    max_trials: int | None = None
    max_wallclock_s: float | None = None
    seed: int = 0
    data_dir: str | None = None
    fidelity_levels: int = 9
    eval_batch_size: int = EVAL_BATCH_SIZE
    max_eval_examples: int | None = None
    trial_timeout_s: float | None = 1800.0
    test_split: str | None = None  # default: pareto (scored after the search); every-trial on SageMaker and in standard NAS
    finetune: FineTuneSettings | None = None
    sagemaker: SageMakerSettings | None = None  # with backend "sagemaker"
    reproducible: bool = False  # synchronous batches, results to the scheduler in trial order (search/in_order.py)

    def __post_init__(self) -> None:
        kind = self.kind
        if self.scheduler is None:
            self.scheduler = kind.default_scheduler
        if self.backend is None:
            self.backend = kind.default_backend
        if self.test_split is None:
            backend = BACKENDS.get(self.backend)  # an unknown one is refused by check()
            self.test_split = (backend.default_test_split if backend is not None else None) or kind.default_test_split

    @property
    def mode(self) -> str:
        """The kind of trial (a ``TRIAL_KINDS`` name): standard NAS with ``finetune``, else weight-sharing."""
        return "standard" if self.finetune is not None else "weight-sharing"

    @property
    def kind(self) -> TrialKind:
        return get_trial_kind(self.mode)

    def check(self) -> None:
        """Every setting, offline, before anything is written; raises a one-line SynePruneError."""
        if (self.supernet is None) == (self.finetune is None):
            raise SynePruneError("give --supernet DIR (weight-sharing search) or --mode standard with --model and --task, not both")
        self.kind.check(self)
        if self.backend in BACKENDS:
            BACKENDS[self.backend].check_kind(self.kind)
        if self.scheduler not in SCHEDULERS:
            raise SynePruneError(f"unknown scheduler '{self.scheduler}'; choose one of {', '.join(SCHEDULERS)}")
        unknown = [o for o in self.objectives if o not in OBJECTIVES]
        if unknown:
            raise SynePruneError(f"unknown objective(s) {', '.join(unknown)}; choose from {', '.join(OBJECTIVES)}")
        if "error" not in self.objectives or len(self.objectives) < 2 or len(set(self.objectives)) != len(self.objectives):
            raise SynePruneError("--objectives must list error and at least one size objective (params, macs, latency), each once, e.g. error,params")
        get_backend(self.backend).check(self)
        self._check_budget()
        if self.test_split not in TEST_SPLITS:
            raise SynePruneError(f"unknown --test-split '{self.test_split}'; choose one of {', '.join(TEST_SPLITS)}")
        self.kind.check_test_split(self)
        if self.fidelity_levels < 1 or self.eval_batch_size < 1:
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
        if self.trial_timeout_s is not None and not self.trial_timeout_s > 0:
            raise SynePruneError(f"--trial-timeout must be positive seconds, got {self.trial_timeout_s}")

    @property
    def max_fidelity(self) -> int:
        """The resource of a finished trial: epochs (standard NAS), else validation chunks seen (MO-ASHA) or 1."""
        return self.kind.max_fidelity(self)
