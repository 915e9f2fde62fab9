"""What a kind of trial is to the search (``TrialKind``) and what it hands the search to run (``PreparedSearch``).

A kind of trial says what one trial does with its configuration (evaluate a sub-network of a shared
super-network; fine-tune its own sub-network; ...), which settings it has (``settings_type``, held by the
search's ``SearchConfig.trial_settings``) and their command-line options, how a search of that kind is checked
and prepared, what the ledger records of its trials, and where export finds a trial's network.

Its methods take the search's ``SearchConfig`` (``syne_prune.search.config``), which names the kind: the
configuration imports the registry, never the other way round. The protocol every trial
follows (arguments, reports, failure, fidelity) is ``syne_prune.search.protocol``.
"""
from __future__ import annotations

import argparse
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from syne_prune.artifacts import SearchRecord
from syne_prune.errors import SynePruneError
from syne_prune.search.trial import Evaluator, TrialSettings
from syne_prune.search_spaces import SearchSpace


@dataclass(frozen=True)
class PreparedSearch:
    """A checked search, ready to run: what its trials are given and what its outputs name.

    ``config``: the search as run (e.g. fidelity levels capped at the validation size); ``space``: the
    search space of the trials' configurations; ``task`` and ``metric``: what the trials score (a built-in task's
    name or the user's resolved specification as its JSON record, ``syne_prune.data.task_record``; the metric whose
    ``1 - metric`` is ``error``); ``constants``: the hyperparameters every trial
    gets besides its configuration (one word each); ``model``: the pre-trained model (as given) the
    networks come from, where known; ``trial_settings``: what every weight-sharing trial (and the pool's
    workers) read, None for other kinds; ``evaluator``: a function returning the trials' ``Evaluator``
    (built on first call) to score networks after the search, None where a kind has none."""

    config: Any  # the SearchConfig as run
    space: SearchSpace
    task: str | dict[str, Any]
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

    name: ClassVar[str]  # the --trial-kind value
    settings_type: ClassVar[type]  # the dataclass of its settings (SearchConfig.trial_settings)
    option_group: ClassVar[str]  # the title of its options in --help
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

    @abstractmethod
    def add_options(self, group: Any) -> None:
        """Add this kind's own options to ``group`` (an argument group of ``syne-prune search``)."""

    @abstractmethod
    def settings_from_args(self, args: argparse.Namespace) -> Any:
        """This kind's settings (a ``settings_type``) from the parsed command line; raises a one-line SynePruneError
        for a missing option of this kind or an option that belongs to another."""

    def check(self, config) -> None:
        """Refuse settings this kind cannot run, as one-line ``SynePruneError``s (before the generic checks)."""
        if not isinstance(config.trial_settings, self.settings_type):
            raise SynePruneError(f"trial kind '{self.name}' needs trial_settings={self.settings_type.__name__}(...), "
                                 f"got {type(config.trial_settings).__name__}")

    def check_test_split(self, config) -> None:
        """Refuse a ``--test-split`` this kind cannot honour (after the generic checks)."""

    @abstractmethod
    def max_fidelity(self, config) -> int:
        """The resource of a finished trial (epochs, validation chunks seen, or 1)."""

    @abstractmethod
    def prepare(self, config) -> PreparedSearch:
        """Check what the trials will read (model or super-network, data) so that a bad input fails here, once,
        and not in every trial; returns what the search runs. Raises SynePruneError."""

    @abstractmethod
    def export_source(self, search_dir: Path, saved: SearchRecord, row: dict[str, Any]) -> ExportSource:
        """The network of trial ``row`` of the search in ``search_dir`` (``saved``: its search.json)."""
