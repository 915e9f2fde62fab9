"""Architecture adapters and the pruned model classes, registered with the transformers Auto classes.

Importing syne_prune registers them, so exported sub-networks load with
``AutoModelForSequenceClassification.from_pretrained(dir)`` (or ``AutoModelForMultipleChoice``, or
``AutoModel``) without ``trust_remote_code``.
"""
from __future__ import annotations

import transformers
from transformers import AutoConfig, AutoModel

from syne_prune.models.architectures import ARCHITECTURES, Architecture, LayerParts, get_architecture
from syne_prune.models.modeling_syne_prune import PRUNED_CLASSES, TASK_HEADS
from syne_prune.models.shape import EncoderShape

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
    """Pre-trained weights from ``source`` with ``task``'s head (new where the checkpoint has none or another)."""
    if task.is_multiple_choice:
        return transformers.AutoModelForMultipleChoice.from_pretrained(source, ignore_mismatched_sizes=True, **kwargs)
    return transformers.AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=task.num_labels, problem_type="regression" if task.is_regression else "single_label_classification",
        ignore_mismatched_sizes=True, **kwargs)


__all__ = ["ARCHITECTURES", "Architecture", "EncoderShape", "LayerParts", "auto_class_of", "get_architecture", "head_of", "load_task_model"]
