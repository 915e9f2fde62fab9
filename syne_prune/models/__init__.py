"""The seven model families — BERT, RoBERTa, DistilBERT, XLM-RoBERTa, ELECTRA, DeBERTa-v2/v3 and ModernBERT (one module
each: ``bert``, ``roberta``, ``distilbert``, ``xlm_roberta``, ``electra``, ``deberta_v2``, ``modernbert``; interface in
``family``; registry in ``architectures``) — and their
pruned model classes, registered with the transformers Auto classes; loading a model, its config and its
tokenizer from a directory or hub id (``loading``).

Importing syne_prune registers them, so exported sub-networks load with
``AutoModelForSequenceClassification.from_pretrained(dir)`` (or ``AutoModelForMultipleChoice``, or
``AutoModel``) without ``trust_remote_code``.
"""
from __future__ import annotations

import transformers
from transformers import AutoConfig, AutoModel

from syne_prune.models.architectures import FAMILIES, PRUNED_CLASSES, TASK_HEADS, Family, LayerParts, UnitAxis, family_of_any, get_family
from syne_prune.models.family import select_units
from syne_prune.models.limits import check_model_settings, usable_positions
from syne_prune.models.loading import (
    auto_class_of,
    check_model_files,
    load_model,
    load_model_config,
    load_task_model,
    load_tokenizer,
)
from syne_prune.models.local_weights import resolve_model
from syne_prune.models.shape import EncoderShape

for _model_type, (_config_class, _base_class, _heads) in PRUNED_CLASSES.items():
    AutoConfig.register(_model_type, _config_class, exist_ok=True)
    AutoModel.register(_config_class, _base_class, exist_ok=True)
    for _auto_name, _head_class in _heads.items():
        getattr(transformers, _auto_name).register(_config_class, _head_class, exist_ok=True)


def head_of(model) -> str | None:
    """The Auto class name of ``model``'s task head (None for a base model)."""
    return next((auto for auto, suffix in TASK_HEADS.items() if type(model).__name__.endswith(suffix)), None)


__all__ = ["FAMILIES", "Family", "EncoderShape", "LayerParts", "PRUNED_CLASSES", "TASK_HEADS", "UnitAxis",
           "auto_class_of", "check_model_files", "check_model_settings", "family_of_any", "get_family", "head_of",
           "load_model", "load_model_config", "load_task_model", "load_tokenizer", "resolve_model", "select_units", "usable_positions"]
