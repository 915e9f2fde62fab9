"""ModernBERT (transformers ``ModernBertModel`` and its classification / multiple-choice heads) for pruning.

Where ModernBERT differs from BERT, and how each difference is handled:

- fused ``attn.Wqkv`` (3·H·d rows: all query heads, then all key heads, then all value heads): a head is its
  d query rows, its d key rows and its d value rows together (``head_rows``); ``attn.Wo`` columns as in BERT.
- gated FFN: ``mlp.Wi`` has 2·I rows, ``act(Wi[:I] x) * Wi[I:] x`` feeds ``mlp.Wo``: neuron i is the row pair
  (i, I + i) of ``Wi`` and column i of ``Wo`` (``neuron_rows``).
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
"""
from __future__ import annotations

import torch
from torch import nn
from transformers import (
    ModernBertConfig,
    ModernBertForMultipleChoice,
    ModernBertForSequenceClassification,
    ModernBertModel,
    PretrainedConfig,
    PreTrainedModel,
)

from .shape import EncoderShape


class PrunedModernBertConfig(ModernBertConfig):
    """ModernBertConfig plus ``num_heads_per_layer``, ``intermediate_size_per_layer`` (0 removes a block) and
    ``first_layer_attn_norm`` (layer 0 gets an attention LayerNorm; stock ModernBERT has none there)."""

    model_type = "syne_prune_modernbert"
    num_heads_per_layer: list[int] | None = None
    intermediate_size_per_layer: list[int] | None = None
    first_layer_attn_norm: bool = False

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        layers = self.num_hidden_layers
        if self.num_heads_per_layer is None:
            self.num_heads_per_layer = [self.num_attention_heads] * layers
        if self.intermediate_size_per_layer is None:
            self.intermediate_size_per_layer = [self.intermediate_size] * layers
        self.num_heads_per_layer = [int(k) for k in self.num_heads_per_layer]
        self.intermediate_size_per_layer = [int(u) for u in self.intermediate_size_per_layer]
        for field, values, top in (
            ("num_heads_per_layer", self.num_heads_per_layer, self.num_attention_heads),
            ("intermediate_size_per_layer", self.intermediate_size_per_layer, self.intermediate_size),
        ):
            if len(values) != layers or not all(0 <= v <= top for v in values):
                raise ValueError(f"{field} must hold {layers} values in [0, {top}], got {values}")


class _RemovedModernBertAttention(nn.Module):
    """A removed attention block: adds nothing to the residual stream (hidden + 0 = hidden exactly)."""

    def forward(self, hidden_states, *args, **kwargs):
        return torch.zeros_like(hidden_states), None


class _RemovedModernBertMLP(nn.Module):
    """A removed gated FFN block: adds nothing to the residual stream."""

    def forward(self, hidden_states):
        return torch.zeros_like(hidden_states)


def _shape_layers(layers: nn.ModuleList, config) -> None:
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


class PrunedModernBertModel(ModernBertModel):
    config_class = PrunedModernBertConfig

    def __init__(self, config):
        super().__init__(config)
        _shape_layers(self.layers, config)
        self.post_init()


class PrunedModernBertForSequenceClassification(ModernBertForSequenceClassification):
    config_class = PrunedModernBertConfig

    def __init__(self, config):
        super().__init__(config)
        _shape_layers(self.model.layers, config)
        self.post_init()


class PrunedModernBertForMultipleChoice(ModernBertForMultipleChoice):
    config_class = PrunedModernBertConfig

    def __init__(self, config):
        super().__init__(config)
        _shape_layers(self.model.layers, config)
        self.post_init()


PRUNED_HEADS = {"AutoModelForSequenceClassification": PrunedModernBertForSequenceClassification,
                "AutoModelForMultipleChoice": PrunedModernBertForMultipleChoice}


MODEL_TYPE = "modernbert"
BASE_PREFIX = "model"
LAYERS_PATH = "layers"

# parameter names inside one layer
QKV, ATTENTION_OUTPUT, FFN_INPUT, FFN_OUTPUT = "attn.Wqkv", "attn.Wo", "mlp.Wi", "mlp.Wo"


def shape_of(config: PretrainedConfig) -> EncoderShape:
    """L, H, I (gated FFN neurons: half of ``Wi``'s rows) and h of a ModernBERT config."""
    return EncoderShape(num_layers=config.num_hidden_layers, num_heads=config.num_attention_heads,
                        num_neurons=config.intermediate_size, hidden_size=config.hidden_size)


def head_rows(heads: torch.Tensor, num_heads: int, head_dim: int) -> torch.Tensor:
    """Rows of ``Wqkv`` that belong to ``heads`` (int64 [k], in this order): query rows, then key rows, then
    value rows, each ``head_dim`` per head, as [3·k·head_dim] int64 (so slicing keeps the q|k|v layout)."""
    within = (heads[:, None] * head_dim + torch.arange(head_dim)[None, :]).flatten()
    return torch.cat([block * num_heads * head_dim + within for block in range(3)])


def head_columns(heads: torch.Tensor, head_dim: int) -> torch.Tensor:
    """Columns of the attention ``Wo`` (= positions of the attention context) of ``heads``: [k·head_dim]."""
    return (heads[:, None] * head_dim + torch.arange(head_dim)[None, :]).flatten()


def neuron_rows(neurons: torch.Tensor, num_neurons: int) -> torch.Tensor:
    """Rows of the gated ``Wi`` of ``neurons`` (int64 [u]): their input rows, then their gate rows: [2u]."""
    return torch.cat([neurons, neurons + num_neurons])


def layer_slicers(config: PretrainedConfig, heads: torch.Tensor, neurons: torch.Tensor) -> dict:
    """Parameter name inside one layer -> function slicing that tensor to the kept units, for one layer keeping
    ``heads`` [H] and ``neurons`` [I] (bool). Fully kept or removed blocks get no slicer (a removed block's
    parameters are not in the sub-network)."""
    shape = shape_of(config)
    slicers: dict = {}
    if heads.any() and not heads.all():
        kept = torch.nonzero(heads).flatten()
        rows, columns = head_rows(kept, shape.num_heads, shape.head_dim), head_columns(kept, shape.head_dim)
        slicers[f"{QKV}.weight"] = slicers[f"{QKV}.bias"] = _index(rows, 0)
        slicers[f"{ATTENTION_OUTPUT}.weight"] = _index(columns, 1)
    if neurons.any() and not neurons.all():
        kept = torch.nonzero(neurons).flatten()
        slicers[f"{FFN_INPUT}.weight"] = slicers[f"{FFN_INPUT}.bias"] = _index(neuron_rows(kept, shape.num_neurons), 0)
        slicers[f"{FFN_OUTPUT}.weight"] = _index(kept, 1)
    return slicers


def _index(index: torch.Tensor, dim: int):
    return lambda t: t.index_select(dim, index.to(t.device))


def block_outputs(layer: nn.Module) -> tuple[nn.Linear, nn.Linear]:
    """(attention ``Wo``, FFN ``Wo``): the projections whose inputs are the per-head context and the per-neuron
    activation, i.e. where in-place masks multiply and where a removed block's contribution is zeroed."""
    return layer.get_submodule(ATTENTION_OUTPUT), layer.get_submodule(FFN_OUTPUT)


def hook_layer(layer: nn.Module, state: list) -> list:
    """In-place masking hooks for one layer; ``state`` = [head multiplier or None, attention removed,
    neuron multiplier or None, FFN removed] (as ``surgery.InPlaceMask`` keeps it). Pre-LayerNorm: a removed
    block's output projection returns zeros and the residual stream passes untouched. Returns the handles."""
    handles = []
    for module, (scale_slot, removed_slot) in zip(block_outputs(layer), ((0, 1), (2, 3))):
        handles.append(module.register_forward_pre_hook(_scale(state, scale_slot)))
        handles.append(module.register_forward_hook(_zero_if_removed(state, removed_slot)))
    return handles


def _scale(state: list, slot: int):
    def pre_hook(module, args):
        multiplier = state[slot]
        if multiplier is None:
            return None
        return (args[0] * multiplier.to(args[0].dtype),) + tuple(args[1:])

    return pre_hook


def _zero_if_removed(state: list, slot: int):
    def hook(module, args, output):
        return torch.zeros_like(output) if state[slot] else None

    return hook


def subnet_config(config: PretrainedConfig, kept_layers: list[int], heads: list[int], neurons: list[int]) -> PretrainedConfig:
    """Config of the sub-network keeping source layers ``kept_layers`` with ``heads`` and ``neurons`` per kept layer.

    ``layer_types`` lists the kept layers' attention kinds, so each keeps its kind. The stock ModernBertConfig
    is used when every kept layer keeps all heads and one FFN width, no block is removed, and the first kept
    layer is layer 0 or has no attention (stock ModernBERT builds layer 0 without an attention norm); else
    ``PrunedModernBertConfig``."""
    full = shape_of(config)
    values = config.to_dict()
    for key in ("model_type", "architectures", "auto_map", "transformers_version", "num_heads_per_layer",
                "intermediate_size_per_layer", "first_layer_attn_norm", "global_attn_every_n_layers"):
        values.pop(key, None)
    values["num_hidden_layers"] = len(kept_layers)
    values["layer_types"] = [config.layer_types[i] for i in kept_layers]
    first_norm = bool(kept_layers) and kept_layers[0] != 0 and heads[0] > 0
    if all(k == full.num_heads for k in heads) and len(set(neurons)) <= 1 and 0 not in neurons and not first_norm:
        values["intermediate_size"] = neurons[0] if neurons else config.intermediate_size
        return ModernBertConfig(**values)
    return PrunedModernBertConfig(**values, num_heads_per_layer=heads, intermediate_size_per_layer=neurons,
                                  first_layer_attn_norm=first_norm)


def layer_size(config: PretrainedConfig, index: int, heads: int, neurons: int, seq_len: int) -> tuple[int, int]:
    """(parameters, MACs per sequence of ``seq_len`` tokens) of source layer ``index`` keeping ``heads`` heads and
    ``neurons`` neurons, by the formulas in this module's docstring (flags attention_bias, mlp_bias, norm_bias)."""
    shape = shape_of(config)
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


def encoder_size(config: PretrainedConfig, heads_per_layer: list[int], neurons_per_layer: list[int],
                 seq_len: int = 128) -> tuple[int, int]:
    """(parameters, MACs per sequence) of all encoder layers: the sum of ``layer_size`` over the source layers."""
    sizes = [layer_size(config, i, k, u, seq_len) for i, (k, u) in enumerate(zip(heads_per_layer, neurons_per_layer))]
    return sum(p for p, _ in sizes), sum(m for _, m in sizes)


@torch.no_grad()
def magnitude_scores(model: PreTrainedModel, layers: nn.ModuleList) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight-norm importance (as ``importance.magnitude_scores`` for BERT): head h = sqrt of the squared norms
    of its q, k, v rows of ``Wqkv`` and its columns of ``Wo``; neuron i = sqrt of the squared norms of its two
    ``Wi`` rows and its ``Wo`` column. Returns heads [L, H], neurons [L, I] float32 on the CPU."""
    shape = shape_of(model.config)
    heads, neurons = [], []
    for layer in layers:
        qkv, attention_out = layer.get_submodule(QKV).weight.float(), layer.get_submodule(ATTENTION_OUTPUT).weight.float()
        per_row = qkv.pow(2).sum(1).view(3, shape.num_heads, shape.head_dim).sum((0, 2))
        per_column = attention_out.pow(2).sum(0).view(shape.num_heads, shape.head_dim).sum(1)
        heads.append((per_row + per_column).sqrt().cpu())
        ffn_in, ffn_out = layer.get_submodule(FFN_INPUT).weight.float(), layer.get_submodule(FFN_OUTPUT).weight.float()
        squares = ffn_in.pow(2).sum(1).view(2, shape.num_neurons).sum(0) + ffn_out.pow(2).sum(0)
        neurons.append(squares.sqrt().cpu())
    return torch.stack(heads), torch.stack(neurons)


@torch.no_grad()
def permute_layer(layer: nn.Module, config: PretrainedConfig, head_order: torch.Tensor, neuron_order: torch.Tensor) -> None:
    """Rewire one layer in place: new head j is old head ``head_order[j]`` (its q, k, v rows of ``Wqkv`` and
    bias, its ``Wo`` columns), new neuron j is old neuron ``neuron_order[j]`` (its two ``Wi`` rows and bias, its
    ``Wo`` column). Function-preserving up to float rounding of the reordered sums."""
    shape = shape_of(config)
    _take(layer.get_submodule(QKV), head_rows(head_order, shape.num_heads, shape.head_dim), rows=True)
    _take(layer.get_submodule(ATTENTION_OUTPUT), head_columns(head_order, shape.head_dim), rows=False)
    _take(layer.get_submodule(FFN_INPUT), neuron_rows(neuron_order, shape.num_neurons), rows=True)
    _take(layer.get_submodule(FFN_OUTPUT), neuron_order, rows=False)


def _take(linear: nn.Linear, index: torch.Tensor, rows: bool) -> None:
    index = index.to(linear.weight.device)
    linear.weight.copy_(linear.weight.index_select(0 if rows else 1, index))
    if rows and linear.bias is not None:
        linear.bias.copy_(linear.bias.index_select(0, index))


__all__ = ["PRUNED_HEADS", "PrunedModernBertConfig", "PrunedModernBertForMultipleChoice",
           "PrunedModernBertForSequenceClassification", "PrunedModernBertModel", "block_outputs", "encoder_size",
           "head_columns", "head_rows", "hook_layer", "layer_size", "layer_slicers", "magnitude_scores", "neuron_rows",
           "permute_layer", "shape_of", "subnet_config"]
