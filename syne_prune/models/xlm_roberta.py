"""XLM-RoBERTa: RoBERTa's structure (base prefix ``roberta``, position ids after the padding index) under the
model type ``xlm-roberta``, with a large multilingual vocabulary. Torch and transformers only: this module
travels with exports."""
from __future__ import annotations

from dataclasses import replace

from transformers import XLMRobertaConfig, XLMRobertaForMultipleChoice, XLMRobertaForSequenceClassification, XLMRobertaModel

from .bert import shape_bert_layers
from .family import PerLayerShape, register_pruned_classes
from .roberta import FAMILY as ROBERTA


class PrunedXLMRobertaConfig(PerLayerShape, XLMRobertaConfig):
    model_type = "syne_prune_xlm_roberta"
    num_heads_per_layer: list[int] | None = None
    intermediate_size_per_layer: list[int] | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self._init_per_layer_shape(self.num_hidden_layers, self.num_attention_heads, self.intermediate_size)


class PrunedXLMRobertaModel(XLMRobertaModel):
    config_class = PrunedXLMRobertaConfig

    def __init__(self, config, add_pooling_layer=True):
        super().__init__(config, add_pooling_layer=add_pooling_layer)
        shape_bert_layers(self.encoder.layer, config)
        self.post_init()


class PrunedXLMRobertaForSequenceClassification(XLMRobertaForSequenceClassification):
    config_class = PrunedXLMRobertaConfig

    def __init__(self, config):
        super().__init__(config)
        shape_bert_layers(self.roberta.encoder.layer, config)
        self.post_init()


class PrunedXLMRobertaForMultipleChoice(XLMRobertaForMultipleChoice):
    config_class = PrunedXLMRobertaConfig

    def __init__(self, config):
        super().__init__(config)
        shape_bert_layers(self.roberta.encoder.layer, config)
        self.post_init()


FAMILY = replace(
    ROBERTA, name="xlm-roberta", model_type="xlm-roberta", pruned_config=PrunedXLMRobertaConfig, pruned_model=PrunedXLMRobertaModel,
    pruned_heads={"AutoModelForSequenceClassification": PrunedXLMRobertaForSequenceClassification,
                  "AutoModelForMultipleChoice": PrunedXLMRobertaForMultipleChoice},
)
register_pruned_classes(*FAMILY.pruned_classes)
