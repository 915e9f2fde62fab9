"""The registry of pruning baselines (``METHODS``): the name ``syne-prune prune --method`` takes -> its ``Method``."""
from __future__ import annotations

from syne_prune.baselines import head_prune, layer_drop, rfp
from syne_prune.baselines.common import Method
from syne_prune.errors import SynePruneError

METHODS: dict[str, Method] = {m.name: m for m in (rfp.METHOD, layer_drop.METHOD, head_prune.METHOD)}


def get_method(name: str) -> Method:
    """The method registered as ``name``; an unknown name is a one-line ``SynePruneError`` listing the choices."""
    if name not in METHODS:
        raise SynePruneError(f"unknown pruning method '{name}'; choose one of {', '.join(METHODS)}")
    return METHODS[name]
