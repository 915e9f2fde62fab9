"""DeBERTa-v2/v3 (transformers model type ``deberta-v2``): BERT's post-LayerNorm layers with disentangled
attention (He et al. 2021, "DeBERTa", eq. 2-4; DeBERTa-v3 keeps it). Where it differs from BERT:

- relative positions: the encoder holds R relative embeddings (``encoder.rel_embeddings``, R = 2 x
  ``position_buckets``, or 2 x ``max_relative_positions`` without buckets; optionally layer-normed by
  ``encoder.LayerNorm``), shared by all layers and never pruned. Each layer projects them per head: with
  ``share_att_key`` (DeBERTa-v3) by its own query and key projections, otherwise by ``pos_key_proj`` (for
  "c2p") and ``pos_query_proj`` (for "p2c"); those two are sliced and permuted with the heads.
- scores: besides QKᵀ, content-to-position (Q against the projected relative keys, n x R per head) and
  position-to-content (K against the projected relative queries) for each type in ``pos_att_type``.
- head size: ``attention_head_size`` when the config sets it (all heads' width = heads x head size), else
  hidden_size / heads. Stock transformers builds the attention output projection hidden_size wide, so a
  stock model runs only when heads x head size = hidden_size; a model built in code with a matching
  projection is pruned too, and its exports use the pruned classes, whose projection takes heads x head size.
- a layer returns a (hidden states, attentions) tuple, and the encoder needs at least one layer: a
  sub-network without layers keeps one parameter-free identity layer.
- ``embed_proj`` (when ``embedding_size`` differs from hidden_size) maps every token; ``ContextPooler`` and
  the classifier read the first token.
- ``conv_kernel_size`` > 0 (deberta-v2-xlarge/xxlarge) adds a convolution (``encoder.conv``, not pruned)
  after the first layer: an extracted sub-network keeps layer 0, as an identity when the mask removes it,
  so the convolution stays where it was; its n·h·(h/groups)·kernel MACs count with the fixed ones.

The pruned classes re-shape the stock ones from ``num_heads_per_layer`` and ``intermediate_size_per_layer``;
a count of 0 removes that block (the residual passes through, skipping its projection, bias and LayerNorm).
Torch and transformers only: this module travels with exports.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .family import Family, UnitAxis
from .pruned import pruned_classes
from .shape import EncoderShape

DEBERTA_PARTS = (
    "attention.self.query_proj",
    "attention.self.key_proj",
    "attention.self.value_proj",
    "attention.output.dense",
    "attention.output.LayerNorm",
    "intermediate.dense",
    "output.dense",
    "output.LayerNorm",
)
HEAD_PROJECTIONS = ("query_proj", "key_proj", "value_proj", "pos_key_proj", "pos_query_proj")
POSITION_SCORES = ("c2p", "p2c")


def head_size(config) -> int:
    """The size of one attention head, as transformers reads it: ``attention_head_size``, else hidden / heads."""
    return getattr(config, "attention_head_size", config.hidden_size // config.num_attention_heads)


def relative_attention_shape(config) -> dict[str, int]:
    """The ``EncoderShape`` fields of disentangled attention, read as transformers reads the config:
    ``relative_positions`` R, ``position_projections`` (query and key with ``share_att_key``, else one per
    "c2p"/"p2c"), ``position_projection_weights`` (those with own weights: ``pos_key_proj``/``pos_query_proj``)
    and ``position_scores`` (one per "c2p"/"p2c"). Empty without ``relative_attention``."""
    if not getattr(config, "relative_attention", False):
        return {}
    types = [t for t in POSITION_SCORES if t in (config.pos_att_type or [])]
    span = getattr(config, "max_relative_positions", -1)
    span = config.max_position_embeddings if span < 1 else span
    buckets = getattr(config, "position_buckets", -1)
    span = buckets if buckets > 0 else span
    shared = getattr(config, "share_att_key", False)
    return {"relative_positions": 2 * span, "position_projections": 2 if shared else len(types),
            "position_projection_weights": 0 if shared else len(types), "position_scores": len(types)}


class SkippedDebertaLayer(nn.Module):
    """A layer with both blocks removed: DeBERTa layers return (hidden states, attentions)."""

    def forward(self, hidden_states, *args, **kwargs):
        return hidden_states, None


class SkippedDebertaAttention(nn.Module):
    """A removed attention block: the residual (the query states, else the hidden states) passes through."""

    def forward(self, hidden_states, attention_mask=None, output_attentions=False, query_states=None, **kwargs):
        return (hidden_states if query_states is None else query_states), None


class SkippedDebertaIntermediate(nn.Module):
    def forward(self, hidden_states):
        return hidden_states


class SkippedDebertaOutput(nn.Module):
    """A removed FFN block: returns the residual input unchanged."""

    def forward(self, hidden_states, input_tensor):
        return input_tensor


def shape_deberta_layers(base: nn.Module, config) -> None:
    """Re-shape the layers of a DeBERTa base model's encoder in place to the config's per-layer lists (no layers:
    one identity layer)."""
    encoder = base.encoder
    if config.num_hidden_layers == 0:
        encoder.layer = nn.ModuleList([SkippedDebertaLayer()])
        return
    hidden, size = config.hidden_size, head_size(config)
    for layer, heads, units in zip(encoder.layer, config.num_heads_per_layer, config.intermediate_size_per_layer):
        if heads == 0:
            layer.attention = SkippedDebertaAttention()
        else:
            attention = layer.attention.self
            if heads != config.num_attention_heads:
                for name in HEAD_PROJECTIONS:
                    if name in attention._modules:
                        setattr(attention, name, nn.Linear(hidden, heads * size))
                attention.num_attention_heads, attention.all_head_size = heads, heads * size
            if layer.attention.output.dense.in_features != heads * size:
                layer.attention.output.dense = nn.Linear(heads * size, hidden)
        if units == 0:
            layer.intermediate, layer.output = SkippedDebertaIntermediate(), SkippedDebertaOutput()
        elif units != config.intermediate_size:
            layer.intermediate.dense = nn.Linear(hidden, units)
            layer.output.dense = nn.Linear(units, hidden)


PRUNED = pruned_classes(__name__, "DebertaV2", "syne_prune_deberta_v2", "deberta", shape_deberta_layers)
PrunedDebertaV2Config, PrunedDebertaV2Model, PrunedDebertaV2ForSequenceClassification, PrunedDebertaV2ForMultipleChoice, \
    PrunedDebertaV2ForTokenClassification = PRUNED


@dataclass(frozen=True, eq=False)
class DebertaV2Family(Family):
    """BERT's family with DeBERTa's head size, relative-position projections, layer output and MAC terms."""

    def shape(self, config) -> EncoderShape:
        return EncoderShape(num_layers=config.num_hidden_layers, num_heads=config.num_attention_heads,
                            num_neurons=config.intermediate_size, hidden_size=config.hidden_size,
                            head_size=head_size(config), **relative_attention_shape(config))

    def removed_layer_forward(self, hidden_states, *args, **kwargs):
        return hidden_states, None

    def head_axes(self) -> tuple[UnitAxis, ...]:
        """BERT's, plus the rows of ``pos_key_proj`` / ``pos_query_proj`` (absent with ``share_att_key``)."""
        positions = tuple(UnitAxis(f"attention.self.{name}.{kind}", 0)
                          for name in ("pos_key_proj", "pos_query_proj") for kind in ("weight", "bias"))
        return super().head_axes() + positions

    def subnet_config(self, config, kept_layers, heads, neurons):
        """As BERT's, but the stock config also needs a layer and heads x head size = hidden_size."""
        sub = super().subnet_config(config, kept_layers, heads, neurons)
        if sub.model_type == self.pruned_model_type or (kept_layers and self.problem_to_load(config) is None):
            return sub
        values = {k: v for k, v in sub.to_dict().items() if k not in ("model_type", "transformers_version")}
        return self.pruned_config(**values, num_heads_per_layer=heads, intermediate_size_per_layer=neurons)

    def attention_size(self, shape: EncoderShape, heads: int, seq_len: int) -> tuple[int, int]:
        """BERT's plus, with k heads of size d: P_w(h·kd + kd) parameters of the own position projections;
        P·R·h·kd MACs projecting the R relative embeddings and S·n·R·kd for the c2p/p2c scores (the
        ``EncoderShape`` fields). The projections run once per forward pass: these are one sequence's MACs."""
        params, macs = super().attention_size(shape, heads, seq_len)
        if not heads:
            return 0, 0
        h, kd, n, r = shape.hidden_size, heads * shape.head_dim, seq_len, shape.relative_positions
        params += shape.position_projection_weights * (h * kd + kd)
        macs += shape.position_projections * r * h * kd + shape.position_scores * n * r * kd
        return params, macs

    def extracted_layers(self, config, kept_layers: list[int]) -> list[int]:
        """The kept layers, plus layer 0 (as an identity) when the encoder's convolution follows it."""
        if getattr(config, "conv_kernel_size", 0) > 0 and 0 not in kept_layers:
            return [0, *kept_layers]
        return kept_layers

    def fixed_macs(self, model, seq_len: int) -> int:
        """BERT's (``embed_proj`` on every token), plus the convolution after layer 0 on every token."""
        inside = {id(m) for m in self.layers(model).modules()}
        convolutions = sum(seq_len * m.out_channels * (m.in_channels // m.groups) * m.kernel_size[0]
                           for m in model.modules() if isinstance(m, nn.Conv1d) and id(m) not in inside)
        return super().fixed_macs(model, seq_len) + convolutions

    def problem_to_load(self, config) -> str | None:
        width = config.num_attention_heads * head_size(config)
        if width != config.hidden_size:
            return (f"model config has attention_head_size {head_size(config)} x {config.num_attention_heads} heads = {width} "
                    f"but hidden_size {config.hidden_size}; transformers' DebertaV2 cannot run it (its attention output "
                    f"projection is hidden_size wide); fix the config")
        return None

    def problem_with_model(self, model) -> str | None:
        shape = self.shape(model.config)
        for index, layer in enumerate(self.layers(model)):
            width = layer.get_submodule(self.part_paths[3]).in_features
            if width != shape.num_heads * shape.head_dim:
                return (f"layer {index}'s attention output projection takes {width} inputs, not {shape.num_heads} heads x "
                        f"attention_head_size {shape.head_dim}; build the model with a matching projection")
        return None


FAMILY = DebertaV2Family(
    name="deberta-v2", model_type="deberta-v2", **PRUNED.family_fields(), base_prefix="deberta", layers_path="encoder.layer",
    layers_field="num_hidden_layers", heads_field="num_attention_heads", neurons_field="intermediate_size",
    hidden_field="hidden_size", part_paths=DEBERTA_PARTS,
    per_token_paths=("embeddings.embed_proj",),
)
