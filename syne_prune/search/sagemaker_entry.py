"""Where the SageMaker job entry point lived before ``syne_prune.search.sagemaker.entry``; kept for imports."""
from __future__ import annotations

from syne_prune.search.sagemaker.entry import hyperparameters, main, resolve_channel

__all__ = ["hyperparameters", "main", "resolve_channel"]
