"""The registry of model families, built from the family modules (one module per family).

Adding a family means adding its module (see ``family.py`` for the interface) and one line here.
"""
from __future__ import annotations

from transformers import PretrainedConfig

from syne_prune.errors import SynePruneError
from syne_prune.models import bert, deberta_v2, distilbert, electra, modernbert, roberta, xlm_roberta
from syne_prune.models.family import TASK_HEADS, Family, LayerParts, UnitAxis

FAMILIES: dict[str, Family] = {module.FAMILY.name: module.FAMILY
                               for module in (bert, roberta, distilbert, xlm_roberta, electra, deberta_v2, modernbert)}

# pruned model_type -> (config class, base model class, {Auto class name: task-model class})
PRUNED_CLASSES: dict[str, tuple] = {family.pruned_model_type: family.pruned_classes for family in FAMILIES.values()}

def get_family(config: PretrainedConfig) -> Family:
    """The family of a stock (unpruned) model config; a pruned export or anything else is a one-line error."""
    model_type = getattr(config, "model_type", None)
    for family in FAMILIES.values():
        if model_type == family.model_type:
            problem = family.problem(config)
            if problem:
                raise SynePruneError(problem)
            return family
        if model_type == family.pruned_model_type:
            raise SynePruneError(
                f"this model is already a pruned syne-prune export ({model_type}); prune the unpruned "
                f"super-network instead"
            )
    raise SynePruneError(
        f"unsupported architecture '{model_type}'; syne-prune supports {', '.join(FAMILIES)}"
    )


def family_of_any(config: PretrainedConfig) -> Family | None:
    """The family of a stock or pruned config (a uniform export has a stock config), None for another model."""
    model_type = getattr(config, "model_type", None)
    return next((f for f in FAMILIES.values() if model_type in (f.model_type, f.pruned_model_type)), None)


__all__ = ["FAMILIES", "Family", "LayerParts", "PRUNED_CLASSES", "TASK_HEADS", "UnitAxis", "family_of_any", "get_family"]
