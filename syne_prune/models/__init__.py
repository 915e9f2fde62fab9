"""The model families (one module each: ``bert``, ``roberta``, ``distilbert``, ``xlm_roberta``, ``electra``,
``deberta_v2``, ``modernbert``; interface in ``family``; registry in ``architectures``) and their
pruned model classes, registered with the transformers Auto classes.

Importing syne_prune registers them, so exported sub-networks load with
``AutoModelForSequenceClassification.from_pretrained(dir)`` (or ``AutoModelForMultipleChoice``, or
``AutoModel``) without ``trust_remote_code``.
"""
from __future__ import annotations

import torch
import transformers
from transformers import AutoConfig, AutoModel

from syne_prune.models.architectures import FAMILIES, PRUNED_CLASSES, TASK_HEADS, Family, LayerParts, UnitAxis, family_of_any, get_family
from syne_prune.models.limits import check_model_settings, usable_positions
from syne_prune.models.shape import EncoderShape
from syne_prune.numerics import require_finite_weights

for _model_type, (_config_class, _base_class, _heads) in PRUNED_CLASSES.items():
    AutoConfig.register(_model_type, _config_class, exist_ok=True)
    AutoModel.register(_config_class, _base_class, exist_ok=True)
    for _auto_name, _head_class in _heads.items():
        getattr(transformers, _auto_name).register(_config_class, _head_class, exist_ok=True)


def auto_class_of(config) -> type:
    """The Auto class that loads a checkpoint with this config: its task head's, else ``AutoModel``."""
    for auto_name, suffix in TASK_HEADS.items():
        if any(a.endswith(suffix) for a in (getattr(config, "architectures", None) or [])):
            return getattr(transformers, auto_name)
    return AutoModel


def head_of(model) -> str | None:
    """The Auto class name of ``model``'s task head (None for a base model)."""
    return next((auto for auto, suffix in TASK_HEADS.items() if type(model).__name__.endswith(suffix)), None)


def load_task_model(source: str, task, **kwargs):
    """Pre-trained weights from ``source`` with ``task``'s head (new where the checkpoint has none or another).

    Loaded in float32 whatever dtype the checkpoint was saved in (training float16 weights without loss
    scaling overflows to NaN); pass ``dtype`` to override. Weights that are already NaN or infinite are a
    one-line ``SynePruneError``."""
    kwargs.setdefault("dtype", torch.float32)
    if task.is_multiple_choice:
        model = transformers.AutoModelForMultipleChoice.from_pretrained(source, ignore_mismatched_sizes=True, **kwargs)
    else:
        if task.spec is not None and task.label_values:  # the user's class names travel with every model made from it
            kwargs.setdefault("id2label", dict(enumerate(task.label_values)))
            kwargs.setdefault("label2id", {name: i for i, name in enumerate(task.label_values)})
        model = transformers.AutoModelForSequenceClassification.from_pretrained(
            source, num_labels=task.num_labels, problem_type="regression" if task.is_regression else "single_label_classification",
            ignore_mismatched_sizes=True, **kwargs)
    require_finite_weights(model, f"model '{source}'", "use a checkpoint with finite weights")
    return model


__all__ = ["FAMILIES", "Family", "EncoderShape", "LayerParts", "PRUNED_CLASSES", "TASK_HEADS", "UnitAxis",
           "auto_class_of", "check_model_settings", "family_of_any", "get_family", "head_of", "load_task_model",
           "usable_positions"]
