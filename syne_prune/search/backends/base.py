"""What a place to run trials is to the search (``SearchBackend``): the one interface ``run.py`` calls.

A backend brings its settings (``settings_type``, held by ``SearchConfig.backend_settings``; None where it has
none) and their command-line options. Its class methods take the search's ``SearchConfig``
(``syne_prune.search.config``), which names the backend: the configuration imports the registry, never the
other way round.

The search asks a backend, in this order: ``check`` (with the search's other settings, nothing touched),
``prepare`` (before the output folder is written: uploads and remote checks), ``syne_tune_backend`` (the Syne
Tune ``TrialBackend`` the Tuner drives), ``start`` and ``close`` (around the Tuner: e.g. persistent workers
that load the shared super-network once), ``wait`` (what the Tuner sleeps on between polls), and for each
finished trial ``stderr`` (its failure reason) and ``checkpoint`` (where a trial that trains keeps its
weights: a path relative to the search's output, or an S3 URI; export reads it).
"""
from __future__ import annotations

import argparse
import os
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from syne_tune.backend.trial_backend import TrialBackend

from syne_prune.errors import SynePruneError
from syne_prune.precision import run_compute
from syne_prune.search.kinds import PreparedSearch, TrialKind

DEFAULT_N_WORKERS = 2  # trials in parallel by default (on the CPU: the workers split the cores)


class SearchBackend(ABC):
    """One registered backend (``syne_prune.search.backends.BACKENDS``), built once per search (part)."""

    name: ClassVar[str]  # the --backend value
    settings_type: ClassVar[type | None] = None  # the dataclass of its settings (SearchConfig.backend_settings)
    default_test_split: ClassVar[str | None] = None  # None: the trial kind's default
    start_jobs_without_delay: ClassVar[bool] = True  # Syne Tune's Tuner option of the same name

    @classmethod
    def check_kind(cls, kind: TrialKind) -> None:
        """Refuse a kind of trial this backend cannot run (SynePruneError, one line)."""

    @classmethod
    def default_n_workers(cls, config) -> int:
        """Trials in parallel when ``--n-workers`` is not given (``DEFAULT_N_WORKERS``; the pool's depends on the GPUs)."""
        return DEFAULT_N_WORKERS

    @classmethod
    def compute_record(cls) -> dict[str, str]:
        """What the trials compute in, as search.json keeps it and a resume checks it: ``{"precision": name, "device":
        kind}``; trials on this machine resolve the run's ``--precision`` and ``--device`` as this process does."""
        return run_compute()

    @classmethod
    def add_options(cls, parser: argparse.ArgumentParser) -> None:
        """Add this backend's own options to ``parser`` (``syne-prune search``), if it has any."""

    @classmethod
    def settings_from_args(cls, args: argparse.Namespace, chosen: bool) -> Any:
        """This backend's settings from the parsed command line (None: it has none, or it is not ``chosen`` and
        ignores its options). Raises a one-line SynePruneError for options it refuses."""
        return None

    @classmethod
    def check(cls, config) -> None:
        """Refuse settings this backend cannot honour (SynePruneError, one line); offline, nothing touched."""
        settings = config.backend_settings
        if settings is not None and (cls.settings_type is None or not isinstance(settings, cls.settings_type)):
            wanted = f"{cls.settings_type.__name__}(...) or None" if cls.settings_type else "None"
            raise SynePruneError(f"--backend {cls.name} takes backend_settings={wanted}, got {type(settings).__name__}")

    def __init__(self, prepared: PreparedSearch, output: Path, entry_point: str | None = None) -> None:
        """``prepared``: the search to run; ``output``: its folder (as given); ``entry_point``: a script to run
        per trial instead of the trial kind's own (local backend only; tests)."""
        self.prepared, self.config, self.kind = prepared, prepared.config, prepared.config.kind
        self.output, self.entry_point = Path(output), entry_point
        self.trial_backend: TrialBackend | None = None

    @property
    def sleep_time(self) -> float:
        """Seconds the Tuner waits between status polls."""
        return 0.2

    def prepare(self) -> None:
        """Everything that can fail before the output folder is touched (remote checks, uploads)."""

    def syne_tune_backend(self, part_dir: Path) -> TrialBackend:
        """The Syne Tune backend the Tuner of the search's part ``part_dir`` (``syne-tune/part-K``) drives."""
        self.trial_backend = self._make_trial_backend(part_dir)
        return self.trial_backend

    @abstractmethod
    def _make_trial_backend(self, part_dir: Path) -> TrialBackend:
        ...

    def start(self, progress: bool) -> None:
        """Called once the Tuner is built, before it runs (``progress``: show a progress bar)."""

    def close(self) -> None:
        """Called when the Tuner has stopped, also after an error."""

    def wait(self, timeout: float) -> None:
        """Sleep between the Tuner's polls: ``timeout`` seconds, or less where the backend knows a trial ended."""
        time.sleep(timeout)

    def stderr(self, trial_id: int) -> list[str]:
        """The trial's error output (its last ``failure_line`` is the reason it failed). Raises OSError without one."""
        return self.trial_backend.stderr(trial_id)

    def checkpoint(self, trial_id: int) -> str:
        """Where trial ``trial_id`` keeps its own weights: a path relative to the output folder (or a URI)."""
        return os.path.relpath(self.trial_backend.checkpoint_trial_path(trial_id), self.output)
