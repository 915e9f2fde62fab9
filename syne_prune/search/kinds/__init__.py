"""The registry of trial kinds: what one trial of a search does with its configuration.

- ``weight-sharing``: evaluate the configuration's sub-network of one shared, verified super-network
  (``syne_prune.search.trial``);
- ``standard``: fine-tune the configuration's own sub-network of the pre-trained model (standard NAS,
  ``syne_prune.search.finetune``).

Each kind brings its settings (``TrialKind.settings_type``: ``WeightSharingSettings``, ``FineTuneSettings``),
their command-line options and their checks. A new kind (the baselines, recovery) is one ``TrialKind`` subclass
registered here.
"""
from __future__ import annotations

from syne_prune.errors import SynePruneError
from syne_prune.search.kinds.base import ExportSource, PreparedSearch, TrialKind
from syne_prune.search.kinds.standard import StandardNAS
from syne_prune.search.kinds.weight_sharing import WeightSharing, WeightSharingSettings

TRIAL_KINDS: dict[str, TrialKind] = {kind.name: kind for kind in (WeightSharing(), StandardNAS())}


def get_trial_kind(name: str) -> TrialKind:
    """The registered kind of trial called ``name`` (a ``--trial-kind`` value). Raises SynePruneError (one line,
    listing the registered kinds) for an unknown name."""
    if name not in TRIAL_KINDS:
        raise SynePruneError(f"unknown trial kind '{name}'; choose one of {', '.join(TRIAL_KINDS)}")
    return TRIAL_KINDS[name]


__all__ = ["ExportSource", "PreparedSearch", "TRIAL_KINDS", "TrialKind", "WeightSharingSettings", "get_trial_kind"]
