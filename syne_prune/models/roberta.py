"""RoBERTa: BERT's layers under the base prefix ``roberta``; position ids start after the padding index
(the stock embeddings handle it). Torch and transformers only: this module travels with exports."""
from __future__ import annotations

from dataclasses import replace

from transformers import RobertaConfig, RobertaForMultipleChoice, RobertaForSequenceClassification, RobertaModel

from .bert import FAMILY as BERT
from .bert import shape_bert_layers
from .family import PerLayerShape, register_pruned_classes


class PrunedRobertaConfig(PerLayerShape, RobertaConfig):
    model_type = "syne_prune_roberta"
    num_heads_per_layer: list[int] | None = None
    intermediate_size_per_layer: list[int] | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self._init_per_layer_shape(self.num_hidden_layers, self.num_attention_heads, self.intermediate_size)


class PrunedRobertaModel(RobertaModel):
    config_class = PrunedRobertaConfig

    def __init__(self, config, add_pooling_layer=True):
        super().__init__(config, add_pooling_layer=add_pooling_layer)
        shape_bert_layers(self.encoder.layer, config)
        self.post_init()


class PrunedRobertaForSequenceClassification(RobertaForSequenceClassification):
    config_class = PrunedRobertaConfig

    def __init__(self, config):
        super().__init__(config)
        shape_bert_layers(self.roberta.encoder.layer, config)
        self.post_init()


class PrunedRobertaForMultipleChoice(RobertaForMultipleChoice):
    config_class = PrunedRobertaConfig

    def __init__(self, config):
        super().__init__(config)
        shape_bert_layers(self.roberta.encoder.layer, config)
        self.post_init()


FAMILY = replace(
    BERT, name="roberta", model_type="roberta", pruned_config=PrunedRobertaConfig, pruned_model=PrunedRobertaModel,
    pruned_heads={"AutoModelForSequenceClassification": PrunedRobertaForSequenceClassification,
                  "AutoModelForMultipleChoice": PrunedRobertaForMultipleChoice},
    base_prefix="roberta", positions_after_padding=True,
)
register_pruned_classes(*FAMILY.pruned_classes)
