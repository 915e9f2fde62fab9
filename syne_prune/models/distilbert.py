"""DistilBERT: BERT's layers under other names (``q_lin``, ``sa_layer_norm``, ``ffn.lin1``, ...) and config
fields (``n_layers``, ``n_heads``, ``hidden_dim``, ``dim``), no token types and no pooler.

A removed block becomes a module returning zeros with an Identity LayerNorm (the layer adds the residual
itself). Torch and transformers only: this module travels with exports."""
from __future__ import annotations

import torch
from torch import nn

from .family import Family
from .pruned import pruned_classes


class ZeroDistilBertAttention(nn.Module):
    """A removed DistilBERT attention block; paired with an Identity LayerNorm, 0 + x passes x through."""

    def forward(self, hidden_states, *args, **kwargs):
        return torch.zeros_like(hidden_states), None


class ZeroFFN(nn.Module):
    def forward(self, hidden_states):
        return torch.zeros_like(hidden_states)


def shape_distilbert_layers(base: nn.Module, config) -> None:
    """Re-shape the layers (``transformer.layer``) of a DistilBERT base model in place to the config's per-layer lists."""
    hidden, head_dim = config.dim, config.dim // config.n_heads
    for layer, heads, units in zip(base.transformer.layer, config.num_heads_per_layer, config.intermediate_size_per_layer):
        if heads == 0:
            layer.attention, layer.sa_layer_norm = ZeroDistilBertAttention(), nn.Identity()
        elif heads != config.n_heads:
            attention = layer.attention
            attention.q_lin = nn.Linear(hidden, heads * head_dim)
            attention.k_lin = nn.Linear(hidden, heads * head_dim)
            attention.v_lin = nn.Linear(hidden, heads * head_dim)
            attention.out_lin = nn.Linear(heads * head_dim, hidden)
            attention.n_heads = heads
        if units == 0:
            layer.ffn, layer.output_layer_norm = ZeroFFN(), nn.Identity()
        elif units != config.hidden_dim:
            layer.ffn.lin1 = nn.Linear(hidden, units)
            layer.ffn.lin2 = nn.Linear(units, hidden)


PRUNED = pruned_classes(__name__, "DistilBert", "syne_prune_distilbert", "distilbert", shape_distilbert_layers,
                        shape_fields=("n_layers", "n_heads", "hidden_dim"))
PrunedDistilBertConfig, PrunedDistilBertModel, PrunedDistilBertForSequenceClassification, PrunedDistilBertForMultipleChoice, \
    PrunedDistilBertForTokenClassification = PRUNED

FAMILY = Family(
    name="distilbert", model_type="distilbert", **PRUNED.family_fields(), base_prefix="distilbert",
    layers_path="transformer.layer", layers_field="n_layers", heads_field="n_heads", neurons_field="hidden_dim", hidden_field="dim",
    part_paths=("attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin", "sa_layer_norm",
                "ffn.lin1", "ffn.lin2", "output_layer_norm"),
)
