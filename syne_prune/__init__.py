"""syne-prune: structural pruning of pre-trained language models as multi-objective NAS."""
from __future__ import annotations

from syne_prune import _threads  # noqa: F401  # first: before anything imports Syne Tune
from syne_prune.errors import SynePruneError
from syne_prune.masks import SubnetMask
from syne_prune.models import EncoderShape, get_family
from syne_prune.search_spaces import SEARCH_SPACES, SearchSpace, get_search_space
from syne_prune.surgery import InPlaceMask, extract_subnetwork, masked, pruned_config
from syne_prune.versions import __version__

__all__ = [
    "EncoderShape",
    "__version__",
    "InPlaceMask",
    "SEARCH_SPACES",
    "SearchSpace",
    "SubnetMask",
    "SynePruneError",
    "extract_subnetwork",
    "get_family",
    "get_search_space",
    "masked",
    "pruned_config",
]
