"""Architecture adapters and the pruned model classes, registered with the transformers Auto classes.

Importing syne_prune registers them, so exported sub-networks load with
``AutoModelForSequenceClassification.from_pretrained(dir)`` without ``trust_remote_code``.
"""
from __future__ import annotations

from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

from syne_prune.models.architectures import ARCHITECTURES, Architecture, LayerParts, get_architecture
from syne_prune.models.modeling_syne_prune import PRUNED_CLASSES
from syne_prune.models.shape import EncoderShape

for _model_type, (_config_class, _base_class, _seq_class) in PRUNED_CLASSES.items():
    AutoConfig.register(_model_type, _config_class, exist_ok=True)
    AutoModel.register(_config_class, _base_class, exist_ok=True)
    AutoModelForSequenceClassification.register(_config_class, _seq_class, exist_ok=True)

__all__ = ["ARCHITECTURES", "Architecture", "EncoderShape", "LayerParts", "get_architecture"]
