"""What a kind of trial is to the search (``TrialKind``) and what it hands the search to run (``PreparedSearch``).

A kind of trial says what one trial does with its configuration (evaluate a sub-network of a shared
super-network; fine-tune its own sub-network; ...), how a search of that kind is checked and prepared, what
the ledger records of its trials, and where export finds a trial's network. The protocol every trial
follows (arguments, reports, failure, fidelity) is ``syne_prune.search.protocol``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from syne_prune.artifacts import SearchRecord
from syne_prune.search_spaces import SearchSpace

if TYPE_CHECKING:  # the search's configuration imports this registry
    from syne_prune.search.config import SearchConfig
    from syne_prune.search.trial import Evaluator, TrialSettings


@dataclass(frozen=True)
class PreparedSearch:
    """A checked search, ready to run: what its trials are given and what its outputs name.

    ``config``: the search as run (e.g. fidelity levels capped at the validation size); ``space``: the
    search space of the trials' configurations; ``task`` and ``metric``: what the trials score (GLUE task
    name, the metric whose ``1 - metric`` is ``error``); ``constants``: the hyperparameters every trial
    gets besides its configuration (one word each); ``model``: the pre-trained model (as given) the
    networks come from, where known; ``trial_settings``: what every weight-sharing trial (and the pool's
    workers) read, None for other kinds; ``evaluator``: a function returning the trials' ``Evaluator``
    (built on first call) to score networks after the search, None where a kind has none."""

    config: SearchConfig
    space: SearchSpace
    task: str
    metric: str
    constants: dict[str, Any]
    model: str | None = None
    trial_settings: TrialSettings | None = None
    evaluator: Callable[[], Evaluator] | None = None


@dataclass(frozen=True)
class ExportSource:
    """Where export finds a finished trial's network: the unpruned ``model`` and ``tokenizer``, the ``space``
    and validated ``config`` of the trial, the ``trained`` sub-network (None: extract it from ``model``),
    and ``trained_on`` (the task record written into the export's metadata)."""

    model: Any
    tokenizer: Any
    space: SearchSpace
    config: dict[str, int]
    trained: Any
    trained_on: dict[str, Any]


class TrialKind(ABC):
    """One kind of trial (a registry entry of ``syne_prune.search.kinds``)."""

    name: ClassVar[str]  # the --mode value
    default_scheduler: ClassVar[str]
    default_backend: ClassVar[str]
    default_test_split: ClassVar[str]
    sagemaker_entry: ClassVar[str]  # syne_prune_entry of a SageMaker job running one trial
    trains_per_trial: ClassVar[bool]  # each trial writes its own weights (a checkpoint per trial, kept for export)
    ledger_columns: ClassVar[tuple[str, ...]] = ()  # trials.csv columns only this kind reports

    @property
    @abstractmethod
    def entry_point(self) -> str:
        """The script a process-per-trial backend runs for one trial (the protocol's command line)."""

    def check(self, config: SearchConfig) -> None:
        """Refuse settings this kind cannot run, as one-line ``SynePruneError``s (before the generic checks)."""

    def check_test_split(self, config: SearchConfig) -> None:
        """Refuse a ``--test-split`` this kind cannot honour (after the generic checks)."""

    @abstractmethod
    def max_fidelity(self, config: SearchConfig) -> int:
        """The resource of a finished trial (epochs, validation chunks seen, or 1)."""

    @abstractmethod
    def prepare(self, config: SearchConfig) -> PreparedSearch:
        """Check what the trials will read (model or super-network, data) so that a bad input fails here, once,
        and not in every trial; returns what the search runs. Raises SynePruneError."""

    @abstractmethod
    def export_source(self, search_dir: Path, saved: SearchRecord, row: dict[str, Any]) -> ExportSource:
        """The network of trial ``row`` of the search in ``search_dir`` (``saved``: its search.json)."""
