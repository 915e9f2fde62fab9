"""ModernBERT (transformers ``ModernBertModel`` and its classification / multiple-choice heads) for pruning.

Where ModernBERT differs from BERT, and how each difference is handled:

- fused ``attn.Wqkv`` (3·H·d rows: all query heads, then all key heads, then all value heads): a head is its
  d query rows, its d key rows and its d value rows together (a unit axis of 3 blocks); ``attn.Wo`` columns as
  in BERT.
- gated FFN: ``mlp.Wi`` has 2·I rows, ``act(Wi[:I] x) * Wi[I:] x`` feeds ``mlp.Wo``: neuron i is the row pair
  (i, I + i) of ``Wi`` (a unit axis of 2 blocks) and column i of ``Wo``.
- pre-LayerNorm: ``attn_norm`` / ``mlp_norm`` normalise a block's *input*; a removed block adds nothing, so the
  residual stream passes untouched (no norm to skip). A removed block's norm is removed with it.
- layer 0 has no ``attn_norm`` (Identity; the embedding norm comes first). When layer 0 is removed, the first
  kept layer keeps its own attention norm (``first_layer_attn_norm`` of the pruned config).
- biases are off by default; ``attention_bias``, ``mlp_bias`` and ``norm_bias`` turn them on (all handled).
- rotary position embeddings: the head size stays hidden_size / num_attention_heads, so pruning heads keeps the
  rotary dimension and frequencies.
- alternating local (sliding-window) and global attention: transformers 5 gives layer i the kind
  ``config.layer_types[i]``; a pruned config lists the kept layers' kinds, so every kept layer keeps its kind.
- ``final_norm`` and the classification head (``head``: dense + norm, then ``classifier``) are not pruned.

Parameters of one layer (hidden size h, head size d, k heads, u neurons; b_a, b_m, b_n = 1 when
attention_bias, mlp_bias, norm_bias are on, else 0; the attention norm is absent in layer 0):

    attention:  h·3kd + 3kd·b_a  +  kd·h + h·b_a  +  h(1 + b_n)   (0 when k = 0)
    FFN:        h·2u + 2u·b_m    +  u·h + h·b_m   +  h(1 + b_n)   (0 when u = 0)

MACs per sequence of n tokens (eager/sdpa attention compute every query-key pair; the sliding window is a mask):

    attention:  3·n·h·kd + 2·n²·kd + n·kd·h        FFN:  2·n·h·u + n·u·h

Like every family module, this one travels with exports whose config is a pruned one: torch, transformers and
its siblings (relative imports) only, never syne_prune. Flash-attention unpadding is not involved: syne-prune
runs eager or sdpa attention, where ModernBERT computes on padded batches.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import ModernBertConfig, PretrainedConfig

from .family import Family, LayerParts, UnitAxis
from .pruned import pruned_classes
from .shape import EncoderShape


class _RemovedModernBertAttention(nn.Module):
    """A removed attention block: adds nothing to the residual stream (hidden + 0 = hidden exactly)."""

    def forward(self, hidden_states, *args, **kwargs):
        return torch.zeros_like(hidden_states), None


class _RemovedModernBertMLP(nn.Module):
    """A removed gated FFN block: adds nothing to the residual stream."""

    def forward(self, hidden_states):
        return torch.zeros_like(hidden_states)


def shape_modernbert_layers(base: nn.Module, config) -> None:
    """Re-shape the layers of a ModernBERT base model in place to the config's per-layer lists, giving layer 0 an
    attention LayerNorm when ``first_layer_attn_norm``."""
    layers = base.layers
    hidden, head_dim = config.hidden_size, config.hidden_size // config.num_attention_heads
    if config.first_layer_attn_norm and len(layers):
        layers[0].attn_norm = nn.LayerNorm(hidden, eps=config.norm_eps, bias=config.norm_bias)
    for layer, heads, units in zip(layers, config.num_heads_per_layer, config.intermediate_size_per_layer):
        if heads == 0:
            layer.attn_norm, layer.attn = nn.Identity(), _RemovedModernBertAttention()
        elif heads != config.num_attention_heads:
            layer.attn.Wqkv = nn.Linear(hidden, 3 * heads * head_dim, bias=config.attention_bias)
            layer.attn.Wo = nn.Linear(heads * head_dim, hidden, bias=config.attention_bias)
        if units == 0:
            layer.mlp_norm, layer.mlp = nn.Identity(), _RemovedModernBertMLP()
        elif units != config.intermediate_size:
            layer.mlp.Wi = nn.Linear(hidden, 2 * units, bias=config.mlp_bias)
            layer.mlp.Wo = nn.Linear(units, hidden, bias=config.mlp_bias)


# ``first_layer_attn_norm``: layer 0 gets an attention LayerNorm (stock ModernBERT has none there); the rope
# parameters stay nested by attention kind even when no layer (or one kind) is kept.
PRUNED = pruned_classes(__name__, "ModernBert", "syne_prune_modernbert", "model", shape_modernbert_layers,
                        config_fields={"first_layer_attn_norm": ("bool", False)},
                        config_attributes={"_rope_type_labels": ("full_attention", "sliding_attention")})
PrunedModernBertConfig, PrunedModernBertModel, PrunedModernBertForSequenceClassification, PrunedModernBertForMultipleChoice, \
    PrunedModernBertForTokenClassification = PRUNED


@dataclass(frozen=True, eq=False)
class ModernBertFamily(Family):
    """ModernBERT's differences from BERT (module docstring): fused Wqkv and gated Wi as blocked unit axes,
    pre-LayerNorm blocks, per-layer kinds and the layer-0 attention norm in the config, its own size formula."""

    def block_output(self, parts: LayerParts, block: str) -> tuple[nn.Module, None]:
        """Pre-LayerNorm: zeroing the output projection of a removed block leaves the residual untouched."""
        return (parts.attention_output if block == "attention" else parts.ffn_output), None

    def head_axes(self) -> tuple[UnitAxis, ...]:
        """Rows of ``Wqkv`` (3 blocks: query, key, value; bias too when attention_bias) and columns of ``Wo``."""
        return UnitAxis("attn.Wqkv.weight", 0, 3), UnitAxis("attn.Wqkv.bias", 0, 3), UnitAxis("attn.Wo.weight", 1)

    def neuron_axes(self) -> tuple[UnitAxis, ...]:
        """Rows of the gated ``Wi`` (2 blocks: input, gate; bias too when mlp_bias) and columns of ``mlp.Wo``."""
        return UnitAxis("mlp.Wi.weight", 0, 2), UnitAxis("mlp.Wi.bias", 0, 2), UnitAxis("mlp.Wo.weight", 1)

    def subnet_config(self, config: PretrainedConfig, kept_layers: list[int], heads: list[int],
                      neurons: list[int]) -> PretrainedConfig:
        """Config of the sub-network keeping source layers ``kept_layers`` with ``heads`` and ``neurons`` each.

        ``layer_types`` lists the kept layers' attention kinds, so each keeps its kind. The stock ModernBertConfig
        is used when at least one layer is kept, every kept layer keeps all heads and one FFN width, no block is
        removed, and the first kept layer is layer 0 (stock ModernBERT builds layer 0 without an attention norm);
        else ``PrunedModernBertConfig`` (whose rope parameters also survive an empty ``layer_types``)."""
        values = config.to_dict()
        for key in ("model_type", "architectures", "auto_map", "transformers_version", "num_heads_per_layer",
                    "intermediate_size_per_layer", "first_layer_attn_norm", "global_attn_every_n_layers"):
            values.pop(key, None)
        values["num_hidden_layers"] = len(kept_layers)
        values["layer_types"] = [config.layer_types[i] for i in kept_layers]
        first_norm = bool(kept_layers) and kept_layers[0] != 0 and heads[0] > 0
        full_heads = all(k == config.num_attention_heads for k in heads)
        if kept_layers and full_heads and len(set(neurons)) == 1 and 0 not in neurons and not first_norm:
            values["intermediate_size"] = neurons[0]
            return ModernBertConfig(**values)
        return PrunedModernBertConfig(**values, num_heads_per_layer=heads, intermediate_size_per_layer=neurons,
                                      first_layer_attn_norm=first_norm)

    def layer_size(self, shape: EncoderShape, config: PretrainedConfig | None, index: int, heads: int, neurons: int,
                   seq_len: int) -> tuple[int, int]:
        """(parameters, MACs per sequence) of source layer ``index`` keeping ``heads`` heads and ``neurons`` neurons,
        by the formulas in this module's docstring. Needs ``config`` (attention_bias, mlp_bias, norm_bias)."""
        if config is None:
            raise ValueError("ModernBERT's layer size depends on its config's bias flags; pass the config")
        h, kd, u, n = shape.hidden_size, heads * shape.head_dim, neurons, seq_len
        b_a, b_m, b_n = int(config.attention_bias), int(config.mlp_bias), int(config.norm_bias)
        params = macs = 0
        if heads:
            params += h * 3 * kd + 3 * kd * b_a + kd * h + h * b_a + (h * (1 + b_n) if index else 0)
            macs += 3 * n * h * kd + 2 * n * n * kd + n * kd * h
        if neurons:
            params += h * 2 * u + 2 * u * b_m + u * h + h * b_m + h * (1 + b_n)
            macs += 2 * n * h * u + n * u * h
        return params, macs


FAMILY = ModernBertFamily(
    name="modernbert", model_type="modernbert", **PRUNED.family_fields(), base_prefix="model", layers_path="layers",
    layers_field="num_hidden_layers", heads_field="num_attention_heads", neurons_field="intermediate_size",
    hidden_field="hidden_size",
    part_paths=("attn.Wqkv", "attn.Wqkv", "attn.Wqkv", "attn.Wo", "attn_norm", "mlp.Wi", "mlp.Wo", "mlp_norm"),
)
