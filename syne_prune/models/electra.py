"""ELECTRA (discriminator): BERT's layers under the base prefix ``electra``, no pooler.

Quirks: embeddings of width ``embedding_size``, projected to ``hidden_size`` by ``embeddings_project`` (a
Linear on every token, outside the layers, so not pruned) when the two differ; the sequence-classification
head is a two-layer MLP on the first token (``classifier.dense`` and ``classifier.out_proj``), the
multiple-choice head a sequence summary (``sequence_summary.summary``) and a classifier. Torch and
transformers only: this module travels with exports."""
from __future__ import annotations

from dataclasses import replace

from transformers import ElectraConfig, ElectraForMultipleChoice, ElectraForSequenceClassification, ElectraModel

from .bert import FAMILY as BERT
from .bert import shape_bert_layers
from .family import PerLayerShape, register_pruned_classes


class PrunedElectraConfig(PerLayerShape, ElectraConfig):
    model_type = "syne_prune_electra"
    num_heads_per_layer: list[int] | None = None
    intermediate_size_per_layer: list[int] | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self._init_per_layer_shape(self.num_hidden_layers, self.num_attention_heads, self.intermediate_size)


class PrunedElectraModel(ElectraModel):
    config_class = PrunedElectraConfig

    def __init__(self, config):
        super().__init__(config)
        shape_bert_layers(self.encoder.layer, config)
        self.post_init()


class PrunedElectraForSequenceClassification(ElectraForSequenceClassification):
    config_class = PrunedElectraConfig

    def __init__(self, config):
        super().__init__(config)
        shape_bert_layers(self.electra.encoder.layer, config)
        self.post_init()


class PrunedElectraForMultipleChoice(ElectraForMultipleChoice):
    config_class = PrunedElectraConfig

    def __init__(self, config):
        super().__init__(config)
        shape_bert_layers(self.electra.encoder.layer, config)
        self.post_init()


FAMILY = replace(
    BERT, name="electra", model_type="electra", pruned_config=PrunedElectraConfig, pruned_model=PrunedElectraModel,
    pruned_heads={"AutoModelForSequenceClassification": PrunedElectraForSequenceClassification,
                  "AutoModelForMultipleChoice": PrunedElectraForMultipleChoice},
    base_prefix="electra", per_token_paths=("embeddings_project",),
)
register_pruned_classes(*FAMILY.pruned_classes)
