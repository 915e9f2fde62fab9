"""The SageMaker options of ``syne-prune search`` (``--backend sagemaker``): defined, with the settings they build,
in ``syne_prune.search.sagemaker.settings`` (one home); re-exported here for the command modules."""
from __future__ import annotations

from syne_prune.search.sagemaker.settings import SAGEMAKER_OPTIONS, add_sagemaker_arguments
from syne_prune.search.sagemaker.settings import sagemaker_settings as _sagemaker_settings

__all__ = ["SAGEMAKER_OPTIONS", "_sagemaker_settings", "add_sagemaker_arguments"]
