"""The registry of backends: where the trials of a search run.

- ``pool``: persistent workers that load the super-network once (the weight-sharing default);
- ``local``: a process per trial (the standard-NAS default);
- ``sagemaker``: a SageMaker training job per trial.

Each is a ``SearchBackend`` (``base.py``); a new backend is one module registered here.
"""
from __future__ import annotations

from syne_prune.errors import SynePruneError
from syne_prune.search.backends.base import DEFAULT_N_WORKERS, SearchBackend
from syne_prune.search.backends.local import LocalSearchBackend
from syne_prune.search.backends.pool import PoolSearchBackend
from syne_prune.search.backends.sagemaker import SageMakerSearchBackend

BACKENDS: dict[str, type[SearchBackend]] = {cls.name: cls for cls in (PoolSearchBackend, LocalSearchBackend, SageMakerSearchBackend)}


def get_backend(name: str) -> type[SearchBackend]:
    """The registered backend called ``name`` (a ``--backend`` value). Raises SynePruneError (one line, listing
    the registered backends) for an unknown name."""
    if name not in BACKENDS:
        raise SynePruneError(f"unknown backend '{name}'; choose one of {', '.join(BACKENDS)}")
    return BACKENDS[name]


__all__ = ["BACKENDS", "DEFAULT_N_WORKERS", "SearchBackend", "get_backend"]
