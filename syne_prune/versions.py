"""The version of syne-prune, and the versions of the software that wrote a result: recorded in every
super-network checkpoint, export, recovery and search summary, so a number can be traced to its code."""
from __future__ import annotations

import platform

import syne_tune
import torch
import transformers

__version__ = "0.2.0"  # the one place the version is written: setup.py reads it from here, CHANGELOG.md names it


def software_versions() -> dict[str, str]:
    """``{"syne_prune", "syne_tune", "torch", "transformers", "python": version string}``."""
    return {"syne_prune": __version__, "syne_tune": syne_tune.__version__, "torch": torch.__version__,
            "transformers": transformers.__version__, "python": platform.python_version()}
