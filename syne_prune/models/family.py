"""The interface of a model family, with BERT's behaviour as the default; one module per family fills it in.

A family module (``bert.py``, ``roberta.py``, ...) holds everything syne-prune knows of one encoder family:
its pruned config and model classes (declared by ``pruned.pruned_classes``), and one ``Family`` object (or an instance of a subclass that overrides
only what differs) saying where the parts live, how they are masked and sliced, and how many parameters and
MACs a sub-network has. ``architectures.py`` builds the registry from the family modules; surgery,
objectives, importance and export ask the family instead of assuming BERT.

Family modules, this one and ``pruned.py`` are copied next to the weights of every export with a pruned config (the export's
``modeling_syne_prune.py`` imports the family module), so that they load with nothing but torch and
transformers installed: they import only torch, transformers, the standard library and their siblings, by
relative import, and never syne_prune.

The interface (``Family``, a frozen dataclass; derive a family from another with ``dataclasses.replace``,
override a method in a subclass where a family differs):

Fields (data):
    name, model_type               registry key and the stock ``config.model_type`` it prunes
    pruned_config, pruned_model    pruned config class (its ``model_type`` is the pruned type) and base model
    pruned_heads                   {Auto class name: pruned task-model class}, keys from ``TASK_HEADS``
    base_prefix                    attribute of a task model that holds the base model (``bert``)
    layers_path                    path from the base model to the ``nn.ModuleList`` of layers
    layers_field, heads_field, neurons_field, hidden_field    config fields of L, H, I and hidden size h
    part_paths                     the ``LayerParts`` fields, as module paths inside one layer
    per_token_paths                paths (from the base model) of Linears outside the layers that run on
                                   every token, e.g. ELECTRA's ``embeddings_project``
    positions_after_padding        position ids start after the padding index (RoBERTa), reserving
                                   pad_token_id + 1 position embeddings

Where the parts live:
    shape(config) -> EncoderShape                  L, H, I, h of a stock or pruned config
    base_model(model) -> PreTrainedModel           the base model inside a task model (or the model itself)
    layers(model) -> nn.ModuleList                 the encoder layers
    layers_prefix(model) -> str                    state-dict prefix of the layer list, ``bert.encoder.layer.``
    parts(layer) -> LayerParts                     the modules pruning touches in one layer
    reserved_positions(config) -> int              position embeddings no token can use (``models.limits``)

In-place masking (``surgery.InPlaceMask``):
    block_output(parts, block) -> (projection, norm | None)
        ``block`` is "attention" or "ffn". The projection's input ([..., H·head_dim] or [..., I]) is
        multiplied by the unit mask, and its output is replaced by zeros when the block is removed; ``norm``
        is the post-LayerNorm whose output then becomes its input (the residual), or None for a
        pre-LayerNorm block, where zeroing the projection already leaves the residual untouched.
    removed_layer_forward(hidden_states, *args, **kwargs)
        replaces ``layer.forward`` while both blocks of the layer are removed; returns what the layer
        returns when it is the identity (BERT: ``hidden_states``).

Mask tuning (``baselines.mask_tuning``; Kwon et al. 2022, Sec. 4.3):
    reconstruction_point(parts, block) -> (module, "input" | "output")
        where a block's output is compared with the unpruned model's: by default derived from
        ``block_output``: the input of the post-LayerNorm (output projection + its bias + the residual), or
        for a pre-LayerNorm block the output projection's output (the residual branch, before it is added
        to the stream). Either way the tensor there is the projection's output plus a part that no
        head or neuron scale changes (bias, residual, or nothing).

Extraction and unit reordering (``surgery.extract_subnetwork``, ``importance.permute_units``,
``importance.magnitude_scores``):
    head_axes() -> tuple[UnitAxis, ...]      parameters of one layer whose axis runs over the H·head_dim
                                             attention units (BERT: rows of query/key/value weight and bias,
                                             columns of the attention output weight); a fused qkv projection
                                             is one UnitAxis with ``blocks=3``
    neuron_axes() -> tuple[UnitAxis, ...]    the same over the I FFN neurons (a gated FFN input: ``blocks=2``)
    select_units(tensor, axis, units) -> Tensor    (function) the kept units of every block along the axis

Settings syne-prune cannot prune (the registry and surgery raise them as one-line ``SynePruneError``):
    problem(config) -> str | None             why a stock config's model cannot be pruned (None: it can)
    problem_to_load(config) -> str | None     ``problem`` plus what the stock class needs to load a checkpoint
    problem_with_model(model) -> str | None   ``problem`` of a built model (which may differ from its config)

Sub-network config (``surgery.pruned_config``):
    extracted_layers(config, kept_layers) -> list[int]
        the source layers an extracted sub-network holds: those the mask keeps (a layer with both blocks
        removed is the identity and is dropped), plus any the family must keep as identities
    subnet_config(config, kept_layers, heads, neurons) -> PretrainedConfig
        the config of the extracted model: stock when every kept layer keeps all heads and one FFN width
        and no block is removed, else ``pruned_config`` with the per-layer lists.

Size (``objectives``; exact, checked against ``numel()`` and torch's FLOP counter):
    attention_size(shape, heads, seq_len) -> (parameters, MACs per sequence) of one attention block
                                              keeping ``heads`` heads (0 removes the block: (0, 0))
    ffn_size(shape, neurons, seq_len) -> (parameters, MACs per sequence) of one FFN block
    layer_size(shape, config, index, heads, neurons, seq_len) -> (parameters, MACs per sequence) of one
                                             layer: attention_size + ffn_size unless overridden
    fixed_macs(model, seq_len) -> int        MACs per sequence outside the layers: Linears in
                                             ``per_token_paths`` on every token, all others (pooler, task
                                             head) on one token
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

from .shape import EncoderShape

# Auto class -> the suffix of the task-model classes it loads (a pruned model's classes follow the stock names).
TASK_HEADS = {"AutoModelForSequenceClassification": "ForSequenceClassification", "AutoModelForMultipleChoice": "ForMultipleChoice",
              "AutoModelForTokenClassification": "ForTokenClassification"}
# Auto classes whose head runs on every token (all other heads run on one token per sequence)
PER_TOKEN_HEADS = ("AutoModelForTokenClassification",)


@dataclass(frozen=True)
class LayerParts:
    """The modules of one encoder layer that pruning touches. A family with a fused qkv projection gives the
    same module for query, key and value; a pre-LayerNorm family gives the norm in front of the block."""

    query: nn.Module
    key: nn.Module
    value: nn.Module
    attention_output: nn.Module
    attention_norm: nn.Module
    ffn_input: nn.Module
    ffn_output: nn.Module
    ffn_norm: nn.Module


@dataclass(frozen=True)
class UnitAxis:
    """A parameter of one layer (``name`` inside the layer, e.g. ``attention.self.query.weight``) whose
    ``axis`` holds ``blocks`` consecutive blocks of the prunable units (heads·head_dim or neurons)."""

    name: str
    axis: int
    blocks: int = 1


def select_units(tensor: torch.Tensor, axis: UnitAxis, units: slice | torch.Tensor) -> torch.Tensor:
    """The kept ``units`` (a slice, giving a view when ``blocks`` is 1, or a LongTensor of unit indices) of
    every block along ``axis.axis`` of ``tensor``; the kept units of block b follow those of block b-1."""
    dim = axis.axis
    if isinstance(units, slice) and axis.blocks == 1:
        return tensor[units] if dim == 0 else tensor[:, units]
    width = tensor.shape[dim] // axis.blocks
    if isinstance(units, slice):
        units = torch.arange(width)[units]
    units = units.to(tensor.device)
    index = torch.cat([units + block * width for block in range(axis.blocks)]) if axis.blocks > 1 else units
    return tensor.index_select(dim, index)


def _identity_layer(hidden_states, *args, **kwargs):
    return hidden_states


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one object per family
class Family:
    """One encoder family; the methods implement BERT (separate q/k/v, post-LayerNorm, biases). See the
    module docstring for what each field and method takes and returns."""

    name: str
    model_type: str
    pruned_config: type
    pruned_model: type
    pruned_heads: Mapping[str, type]
    base_prefix: str
    layers_path: str
    layers_field: str
    heads_field: str
    neurons_field: str
    hidden_field: str
    part_paths: tuple[str, ...]
    per_token_paths: tuple[str, ...] = ()
    positions_after_padding: bool = False

    # ---- identity and where the parts live ----
    @property
    def pruned_model_type(self) -> str:
        return self.pruned_config.model_type

    @property
    def pruned_classes(self) -> tuple[type, type, Mapping[str, type]]:
        """(config class, base model class, {Auto class name: task-model class}) of the pruned model."""
        return self.pruned_config, self.pruned_model, self.pruned_heads

    def shape(self, config: PretrainedConfig) -> EncoderShape:
        return EncoderShape(
            num_layers=getattr(config, self.layers_field),
            num_heads=getattr(config, self.heads_field),
            num_neurons=getattr(config, self.neurons_field),
            hidden_size=getattr(config, self.hidden_field),
        )

    def base_model(self, model: PreTrainedModel) -> PreTrainedModel:
        return getattr(model, self.base_prefix, model)

    def layers(self, model: PreTrainedModel) -> nn.ModuleList:
        return self.base_model(model).get_submodule(self.layers_path)

    def layers_prefix(self, model: PreTrainedModel) -> str:
        """State-dict prefix of the layer list, e.g. ``bert.encoder.layer.``."""
        base = f"{self.base_prefix}." if hasattr(model, self.base_prefix) else ""
        return f"{base}{self.layers_path}."

    def parts(self, layer: nn.Module) -> LayerParts:
        return LayerParts(*(layer.get_submodule(path) for path in self.part_paths))

    def reserved_positions(self, config: PretrainedConfig) -> int:
        """Position embeddings before the first usable one: pad_token_id + 1 where ids start after the padding index."""
        return (config.pad_token_id or 0) + 1 if self.positions_after_padding else 0

    # ---- in-place masking ----
    def block_output(self, parts: LayerParts, block: str) -> tuple[nn.Module, nn.Module | None]:
        """(output projection, post-LayerNorm or None) of the "attention" or "ffn" block of a layer."""
        return (parts.attention_output, parts.attention_norm) if block == "attention" else (parts.ffn_output, parts.ffn_norm)

    def removed_layer_forward(self, hidden_states, *args, **kwargs):
        """The forward of a layer whose blocks are all removed: the identity."""
        return _identity_layer(hidden_states, *args, **kwargs)

    # ---- mask tuning ----
    def reconstruction_point(self, parts: LayerParts, block: str) -> tuple[nn.Module, str]:
        """(module, "input" | "output"): where mask tuning reads the "attention" or "ffn" block's output,
        [..., hidden]: the post-LayerNorm's input, or the output projection's output without a post-LayerNorm."""
        projection, norm = self.block_output(parts, block)
        return (norm, "input") if norm is not None else (projection, "output")

    # ---- extraction and unit reordering ----
    def head_axes(self) -> tuple[UnitAxis, ...]:
        q, k, v, attention_output = self.part_paths[:4]
        rows = tuple(UnitAxis(f"{path}.{kind}", 0) for path in (q, k, v) for kind in ("weight", "bias"))
        return rows + (UnitAxis(f"{attention_output}.weight", 1),)

    def neuron_axes(self) -> tuple[UnitAxis, ...]:
        ffn_input, ffn_output = self.part_paths[5:7]
        return UnitAxis(f"{ffn_input}.weight", 0), UnitAxis(f"{ffn_input}.bias", 0), UnitAxis(f"{ffn_output}.weight", 1)

    # ---- settings that cannot be pruned ----
    def problem(self, config: PretrainedConfig) -> str | None:
        """A one-line reason why a model with this stock config cannot be pruned, or None."""
        return None

    def problem_to_load(self, config: PretrainedConfig) -> str | None:
        """``problem``, plus what stops the stock class from loading a checkpoint with this config."""
        return self.problem(config)

    def problem_with_model(self, model: PreTrainedModel) -> str | None:
        """``problem`` for a built model (a model built in code may differ from what its config implies)."""
        return self.problem(model.config)

    # ---- sub-network config ----
    def extracted_layers(self, config: PretrainedConfig, kept_layers: list[int]) -> list[int]:
        """The source layers (ascending) an extracted sub-network holds: BERT, those the mask keeps."""
        return kept_layers

    def subnet_config(self, config: PretrainedConfig, kept_layers: list[int], heads: list[int],
                      neurons: list[int]) -> PretrainedConfig:
        """Config of the sub-network keeping ``kept_layers`` (indices into the source layers) with ``heads``
        and ``neurons`` per kept layer. Stock BERT derives the head size from the head count, so fewer heads
        always need the pruned config class."""
        full = self.shape(config)
        values = config.to_dict()
        for key in ("model_type", "architectures", "auto_map", "transformers_version", "num_heads_per_layer",
                    "intermediate_size_per_layer"):
            values.pop(key, None)
        values[self.layers_field] = len(kept_layers)
        if all(k == full.num_heads for k in heads) and len(set(neurons)) <= 1 and 0 not in neurons:
            values[self.neurons_field] = neurons[0] if neurons else getattr(config, self.neurons_field)
            return type(config)(**values)
        return self.pruned_config(**values, num_heads_per_layer=heads, intermediate_size_per_layer=neurons)

    # ---- size (Klein et al. 2024, Sec. 5: parameter count and MACs of a sub-network) ----
    def attention_size(self, shape: EncoderShape, heads: int, seq_len: int) -> tuple[int, int]:
        """BERT: 3(h·kd + kd) + (kd·h + h) + 2h parameters; 3·n·h·kd + 2·n²·kd + n·kd·h MACs."""
        if not heads:
            return 0, 0
        h, kd, n = shape.hidden_size, heads * shape.head_dim, seq_len
        return 3 * (h * kd + kd) + (kd * h + h) + 2 * h, 3 * n * h * kd + 2 * n * n * kd + n * kd * h

    def ffn_size(self, shape: EncoderShape, neurons: int, seq_len: int) -> tuple[int, int]:
        """BERT: (h·u + u) + (u·h + h) + 2h parameters; 2·n·h·u MACs."""
        if not neurons:
            return 0, 0
        h, u = shape.hidden_size, neurons
        return (h * u + u) + (u * h + h) + 2 * h, 2 * seq_len * h * u

    def layer_size(self, shape: EncoderShape, config: PretrainedConfig | None, index: int, heads: int, neurons: int,
                   seq_len: int) -> tuple[int, int]:
        """(parameters, MACs per sequence) of source layer ``index`` keeping ``heads`` heads and ``neurons``
        neurons: ``attention_size`` + ``ffn_size`` (a family whose layers differ by index or config flags, such
        as ModernBERT, overrides this; ``config`` is None where only the shape is known)."""
        attention, ffn = self.attention_size(shape, heads, seq_len), self.ffn_size(shape, neurons, seq_len)
        return attention[0] + ffn[0], attention[1] + ffn[1]

    def fixed_macs(self, model: PreTrainedModel, seq_len: int) -> int:
        """MACs per sequence of the Linears outside the layers (embedding lookups are no MACs); a token
        classifier's head (``PER_TOKEN_HEADS``) runs on every token."""
        inside = {id(m) for m in self.layers(model).modules()}
        base = self.base_model(model)
        per_token = {id(base.get_submodule(path)) for path in self.per_token_paths if _has_submodule(base, path)}
        if any(type(model).__name__.endswith(TASK_HEADS[auto]) for auto in PER_TOKEN_HEADS):
            in_base = {id(m) for m in base.modules()}
            per_token |= {id(m) for m in model.modules() if id(m) not in in_base}
        return sum(m.in_features * m.out_features * (seq_len if id(m) in per_token else 1)
                   for m in model.modules() if isinstance(m, nn.Linear) and id(m) not in inside)


def _has_submodule(module: nn.Module, path: str) -> bool:
    try:
        module.get_submodule(path)
    except AttributeError:
        return False
    return True
