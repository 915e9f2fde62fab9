"""BERT: separate query/key/value, post-LayerNorm blocks, biases everywhere (``Family``'s defaults).

The pruned classes are the stock ones with their layers re-shaped from two config lists:
``num_heads_per_layer`` (heads kept; head size stays hidden_size / num_attention_heads) and
``intermediate_size_per_layer`` (FFN neurons kept). A count of 0 removes that block entirely: the
residual passes through, skipping the block's output projection, bias and LayerNorm.
This module travels with exports: torch and transformers only, never syne_prune.
"""
from __future__ import annotations

from torch import nn

from .family import Family
from .pruned import pruned_classes

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


def shape_bert_layers(base: nn.Module, config) -> None:
    """Re-shape the layers (``encoder.layer``) of a BERT-style base model (BERT, RoBERTa, XLM-RoBERTa, ELECTRA) in
    place to the config's per-layer lists."""
    hidden, head_dim = config.hidden_size, config.hidden_size // config.num_attention_heads
    for layer, heads, units in zip(base.encoder.layer, config.num_heads_per_layer, config.intermediate_size_per_layer):
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


PRUNED = pruned_classes(__name__, "Bert", "syne_prune_bert", "bert", shape_bert_layers)
PrunedBertConfig, PrunedBertModel, PrunedBertForSequenceClassification, PrunedBertForMultipleChoice, \
    PrunedBertForTokenClassification = PRUNED

FAMILY = Family(
    name="bert", model_type="bert", **PRUNED.family_fields(), base_prefix="bert", layers_path="encoder.layer",
    layers_field="num_hidden_layers", heads_field="num_attention_heads", neurons_field="intermediate_size",
    hidden_field="hidden_size", part_paths=BERT_PARTS,
)
