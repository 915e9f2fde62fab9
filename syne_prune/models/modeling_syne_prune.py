"""BERT, RoBERTa and DistilBERT whose layers differ in head count and FFN width (syne-prune exports).

This file is copied next to the weights of every exported sub-network so that
``AutoModel*.from_pretrained(dir, trust_remote_code=True)`` loads it with nothing but torch and
transformers installed: it must never import syne_prune.

Each class is the stock transformers class with its layers re-shaped from two config lists:
``num_heads_per_layer`` (heads kept; head size stays hidden_size / num_attention_heads) and
``intermediate_size_per_layer`` (FFN neurons kept). A count of 0 removes that block entirely: the
residual passes through, skipping the block's output projection, bias and LayerNorm.
"""
from __future__ import annotations

import torch
from torch import nn
from transformers import (
    BertConfig,
    BertForMultipleChoice,
    BertForSequenceClassification,
    BertModel,
    DistilBertConfig,
    DistilBertForMultipleChoice,
    DistilBertForSequenceClassification,
    DistilBertModel,
    RobertaConfig,
    RobertaForMultipleChoice,
    RobertaForSequenceClassification,
    RobertaModel,
)


class _PerLayerShape:
    """Per-layer lists shared by the three config classes (filled with the full shape by default)."""

    def _init_per_layer_shape(self, num_layers: int, num_heads: int, num_neurons: int) -> None:
        if self.num_heads_per_layer is None:
            self.num_heads_per_layer = [num_heads] * num_layers
        if self.intermediate_size_per_layer is None:
            self.intermediate_size_per_layer = [num_neurons] * num_layers
        self.num_heads_per_layer = [int(k) for k in self.num_heads_per_layer]
        self.intermediate_size_per_layer = [int(u) for u in self.intermediate_size_per_layer]
        for field, values, top in (
            ("num_heads_per_layer", self.num_heads_per_layer, num_heads),
            ("intermediate_size_per_layer", self.intermediate_size_per_layer, num_neurons),
        ):
            if len(values) != num_layers or not all(0 <= v <= top for v in values):
                raise ValueError(f"{field} must hold {num_layers} values in [0, {top}], got {values}")


class PrunedBertConfig(_PerLayerShape, BertConfig):
    model_type = "syne_prune_bert"
    num_heads_per_layer: list[int] | None = None
    intermediate_size_per_layer: list[int] | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self._init_per_layer_shape(self.num_hidden_layers, self.num_attention_heads, self.intermediate_size)


class PrunedRobertaConfig(_PerLayerShape, RobertaConfig):
    model_type = "syne_prune_roberta"
    num_heads_per_layer: list[int] | None = None
    intermediate_size_per_layer: list[int] | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self._init_per_layer_shape(self.num_hidden_layers, self.num_attention_heads, self.intermediate_size)


class PrunedDistilBertConfig(_PerLayerShape, DistilBertConfig):
    model_type = "syne_prune_distilbert"
    num_heads_per_layer: list[int] | None = None
    intermediate_size_per_layer: list[int] | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self._init_per_layer_shape(self.n_layers, self.n_heads, self.hidden_dim)


class _SkippedBertAttention(nn.Module):
    """A removed attention block of a BERT/RoBERTa layer: the residual passes through."""

    def forward(self, hidden_states, *args, **kwargs):
        return hidden_states, None


class _SkippedBertIntermediate(nn.Module):
    def forward(self, hidden_states):
        return hidden_states


class _SkippedBertOutput(nn.Module):
    """A removed FFN block of a BERT/RoBERTa layer: returns the residual input unchanged."""

    def forward(self, hidden_states, input_tensor):
        return input_tensor


class _ZeroDistilBertAttention(nn.Module):
    """A removed DistilBERT attention block; paired with an Identity LayerNorm, 0 + x passes x through."""

    def forward(self, hidden_states, *args, **kwargs):
        return torch.zeros_like(hidden_states), None


class _ZeroFFN(nn.Module):
    def forward(self, hidden_states):
        return torch.zeros_like(hidden_states)


def _shape_bert_layers(layers: nn.ModuleList, config) -> None:
    hidden, head_dim = config.hidden_size, config.hidden_size // config.num_attention_heads
    for layer, heads, units in zip(layers, config.num_heads_per_layer, config.intermediate_size_per_layer):
        if heads == 0:
            layer.attention = _SkippedBertAttention()
        elif heads != config.num_attention_heads:
            attention = layer.attention.self
            attention.query = nn.Linear(hidden, heads * head_dim)
            attention.key = nn.Linear(hidden, heads * head_dim)
            attention.value = nn.Linear(hidden, heads * head_dim)
            attention.num_attention_heads, attention.all_head_size = heads, heads * head_dim
            layer.attention.output.dense = nn.Linear(heads * head_dim, hidden)
        if units == 0:
            layer.intermediate, layer.output = _SkippedBertIntermediate(), _SkippedBertOutput()
        elif units != config.intermediate_size:
            layer.intermediate.dense = nn.Linear(hidden, units)
            layer.output.dense = nn.Linear(units, hidden)


def _shape_distilbert_layers(layers: nn.ModuleList, config) -> None:
    hidden, head_dim = config.dim, config.dim // config.n_heads
    for layer, heads, units in zip(layers, config.num_heads_per_layer, config.intermediate_size_per_layer):
        if heads == 0:
            layer.attention, layer.sa_layer_norm = _ZeroDistilBertAttention(), nn.Identity()
        elif heads != config.n_heads:
            attention = layer.attention
            attention.q_lin = nn.Linear(hidden, heads * head_dim)
            attention.k_lin = nn.Linear(hidden, heads * head_dim)
            attention.v_lin = nn.Linear(hidden, heads * head_dim)
            attention.out_lin = nn.Linear(heads * head_dim, hidden)
            attention.n_heads = heads
        if units == 0:
            layer.ffn, layer.output_layer_norm = _ZeroFFN(), nn.Identity()
        elif units != config.hidden_dim:
            layer.ffn.lin1 = nn.Linear(hidden, units)
            layer.ffn.lin2 = nn.Linear(units, hidden)


class PrunedBertModel(BertModel):
    config_class = PrunedBertConfig

    def __init__(self, config, add_pooling_layer=True):
        super().__init__(config, add_pooling_layer=add_pooling_layer)
        _shape_bert_layers(self.encoder.layer, config)
        self.post_init()


class PrunedBertForSequenceClassification(BertForSequenceClassification):
    config_class = PrunedBertConfig

    def __init__(self, config):
        super().__init__(config)
        _shape_bert_layers(self.bert.encoder.layer, config)
        self.post_init()


class PrunedBertForMultipleChoice(BertForMultipleChoice):
    config_class = PrunedBertConfig

    def __init__(self, config):
        super().__init__(config)
        _shape_bert_layers(self.bert.encoder.layer, config)
        self.post_init()


class PrunedRobertaModel(RobertaModel):
    config_class = PrunedRobertaConfig

    def __init__(self, config, add_pooling_layer=True):
        super().__init__(config, add_pooling_layer=add_pooling_layer)
        _shape_bert_layers(self.encoder.layer, config)
        self.post_init()


class PrunedRobertaForSequenceClassification(RobertaForSequenceClassification):
    config_class = PrunedRobertaConfig

    def __init__(self, config):
        super().__init__(config)
        _shape_bert_layers(self.roberta.encoder.layer, config)
        self.post_init()


class PrunedRobertaForMultipleChoice(RobertaForMultipleChoice):
    config_class = PrunedRobertaConfig

    def __init__(self, config):
        super().__init__(config)
        _shape_bert_layers(self.roberta.encoder.layer, config)
        self.post_init()


class PrunedDistilBertModel(DistilBertModel):
    config_class = PrunedDistilBertConfig

    def __init__(self, config):
        super().__init__(config)
        _shape_distilbert_layers(self.transformer.layer, config)
        self.post_init()


class PrunedDistilBertForSequenceClassification(DistilBertForSequenceClassification):
    config_class = PrunedDistilBertConfig

    def __init__(self, config):
        super().__init__(config)
        _shape_distilbert_layers(self.distilbert.transformer.layer, config)
        self.post_init()


class PrunedDistilBertForMultipleChoice(DistilBertForMultipleChoice):
    config_class = PrunedDistilBertConfig

    def __init__(self, config):
        super().__init__(config)
        _shape_distilbert_layers(self.distilbert.transformer.layer, config)
        self.post_init()


# Auto class -> the suffix of the task-model classes it loads (a pruned model's classes follow the stock names).
TASK_HEADS = {"AutoModelForSequenceClassification": "ForSequenceClassification", "AutoModelForMultipleChoice": "ForMultipleChoice"}

PRUNED_CLASSES = {
    # model_type: (config class, base model class, {auto class name: task-model class})
    PrunedBertConfig.model_type: (PrunedBertConfig, PrunedBertModel, {
        "AutoModelForSequenceClassification": PrunedBertForSequenceClassification,
        "AutoModelForMultipleChoice": PrunedBertForMultipleChoice}),
    PrunedRobertaConfig.model_type: (PrunedRobertaConfig, PrunedRobertaModel, {
        "AutoModelForSequenceClassification": PrunedRobertaForSequenceClassification,
        "AutoModelForMultipleChoice": PrunedRobertaForMultipleChoice}),
    PrunedDistilBertConfig.model_type: (PrunedDistilBertConfig, PrunedDistilBertModel, {
        "AutoModelForSequenceClassification": PrunedDistilBertForSequenceClassification,
        "AutoModelForMultipleChoice": PrunedDistilBertForMultipleChoice}),
}

for _config_class, _base_class, _heads in PRUNED_CLASSES.values():
    _config_class.register_for_auto_class()
    _base_class.register_for_auto_class("AutoModel")
    for _auto_name, _head_class in _heads.items():
        _head_class.register_for_auto_class(_auto_name)
