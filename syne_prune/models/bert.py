"""BERT: separate query/key/value, post-LayerNorm blocks, biases everywhere (``Family``'s defaults).

The pruned classes are the stock ones with their layers re-shaped from two config lists:
``num_heads_per_layer`` (heads kept; head size stays hidden_size / num_attention_heads) and
``intermediate_size_per_layer`` (FFN neurons kept). A count of 0 removes that block entirely: the
residual passes through, skipping the block's output projection, bias and LayerNorm.
This module travels with exports: torch and transformers only, never syne_prune.
"""
from __future__ import annotations

from torch import nn
from transformers import BertConfig, BertForMultipleChoice, BertForSequenceClassification, BertModel

from .family import Family, PerLayerShape, register_pruned_classes

BERT_PARTS = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "attention.output.LayerNorm",
    "intermediate.dense",
    "output.dense",
    "output.LayerNorm",
)


class SkippedBertAttention(nn.Module):
    """A removed attention block of a BERT-style layer: the residual passes through."""

    def forward(self, hidden_states, *args, **kwargs):
        return hidden_states, None


class SkippedBertIntermediate(nn.Module):
    def forward(self, hidden_states):
        return hidden_states


class SkippedBertOutput(nn.Module):
    """A removed FFN block of a BERT-style layer: returns the residual input unchanged."""

    def forward(self, hidden_states, input_tensor):
        return input_tensor


def shape_bert_layers(layers: nn.ModuleList, config) -> None:
    """Re-shape BERT-style layers (BERT, RoBERTa, XLM-RoBERTa, ELECTRA) in place to the config's per-layer lists."""
    hidden, head_dim = config.hidden_size, config.hidden_size // config.num_attention_heads
    for layer, heads, units in zip(layers, config.num_heads_per_layer, config.intermediate_size_per_layer):
        if heads == 0:
            layer.attention = SkippedBertAttention()
        elif heads != config.num_attention_heads:
            attention = layer.attention.self
            attention.query = nn.Linear(hidden, heads * head_dim)
            attention.key = nn.Linear(hidden, heads * head_dim)
            attention.value = nn.Linear(hidden, heads * head_dim)
            attention.num_attention_heads, attention.all_head_size = heads, heads * head_dim
            layer.attention.output.dense = nn.Linear(heads * head_dim, hidden)
        if units == 0:
            layer.intermediate, layer.output = SkippedBertIntermediate(), SkippedBertOutput()
        elif units != config.intermediate_size:
            layer.intermediate.dense = nn.Linear(hidden, units)
            layer.output.dense = nn.Linear(units, hidden)


class PrunedBertConfig(PerLayerShape, BertConfig):
    model_type = "syne_prune_bert"
    num_heads_per_layer: list[int] | None = None
    intermediate_size_per_layer: list[int] | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self._init_per_layer_shape(self.num_hidden_layers, self.num_attention_heads, self.intermediate_size)


class PrunedBertModel(BertModel):
    config_class = PrunedBertConfig

    def __init__(self, config, add_pooling_layer=True):
        super().__init__(config, add_pooling_layer=add_pooling_layer)
        shape_bert_layers(self.encoder.layer, config)
        self.post_init()


class PrunedBertForSequenceClassification(BertForSequenceClassification):
    config_class = PrunedBertConfig

    def __init__(self, config):
        super().__init__(config)
        shape_bert_layers(self.bert.encoder.layer, config)
        self.post_init()


class PrunedBertForMultipleChoice(BertForMultipleChoice):
    config_class = PrunedBertConfig

    def __init__(self, config):
        super().__init__(config)
        shape_bert_layers(self.bert.encoder.layer, config)
        self.post_init()


FAMILY = Family(
    name="bert", model_type="bert", pruned_config=PrunedBertConfig, pruned_model=PrunedBertModel,
    pruned_heads={"AutoModelForSequenceClassification": PrunedBertForSequenceClassification,
                  "AutoModelForMultipleChoice": PrunedBertForMultipleChoice},
    base_prefix="bert", layers_path="encoder.layer", layers_field="num_hidden_layers", heads_field="num_attention_heads",
    neurons_field="intermediate_size", hidden_field="hidden_size", part_paths=BERT_PARTS,
)
register_pruned_classes(*FAMILY.pruned_classes)
