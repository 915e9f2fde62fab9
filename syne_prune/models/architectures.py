"""One adapter per architecture: where a model's layers, heads and FFN neurons live.

Surgery, masking and size counts only talk to an ``Architecture``; adding an encoder family means
adding an adapter here and its pruned classes in ``modeling_syne_prune``.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

from syne_prune.errors import SynePruneError
from syne_prune.models import modeling_syne_prune as pruned
from syne_prune.models.shape import EncoderShape


@dataclass(frozen=True)
class LayerParts:
    """The modules of one encoder layer that pruning touches (all post-LayerNorm blocks)."""

    query: nn.Linear
    key: nn.Linear
    value: nn.Linear
    attention_output: nn.Linear
    attention_norm: nn.LayerNorm
    ffn_input: nn.Linear
    ffn_output: nn.Linear
    ffn_norm: nn.LayerNorm


@dataclass(frozen=True)
class Architecture:
    name: str
    model_type: str
    pruned_model_type: str
    base_prefix: str  # attribute of a task model that holds the base model
    layers_path: str  # path from the base model to the nn.ModuleList of layers
    layers_field: str  # config field with the number of layers
    heads_field: str
    neurons_field: str
    hidden_field: str
    part_paths: tuple[str, ...]  # LayerParts fields, as module paths inside one layer

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

    @property
    def pruned_classes(self) -> tuple[type, type, dict[str, type]]:
        """(config class, base model class, {Auto class name: task-model class}) of the pruned model."""
        return pruned.PRUNED_CLASSES[self.pruned_model_type]


_BERT_PARTS = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "attention.output.LayerNorm",
    "intermediate.dense",
    "output.dense",
    "output.LayerNorm",
)

ARCHITECTURES: dict[str, Architecture] = {
    "bert": Architecture(
        "bert", "bert", "syne_prune_bert", "bert", "encoder.layer",
        "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_size", _BERT_PARTS,
    ),
    "roberta": Architecture(
        "roberta", "roberta", "syne_prune_roberta", "roberta", "encoder.layer",
        "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_size", _BERT_PARTS,
    ),
    "distilbert": Architecture(
        "distilbert", "distilbert", "syne_prune_distilbert", "distilbert", "transformer.layer",
        "n_layers", "n_heads", "hidden_dim", "dim",
        (
            "attention.q_lin",
            "attention.k_lin",
            "attention.v_lin",
            "attention.out_lin",
            "sa_layer_norm",
            "ffn.lin1",
            "ffn.lin2",
            "output_layer_norm",
        ),
    ),
}


def get_architecture(config: PretrainedConfig) -> Architecture:
    """The adapter for a (stock, unpruned) model config; anything else is a one-line error."""
    model_type = getattr(config, "model_type", None)
    for arch in ARCHITECTURES.values():
        if model_type == arch.model_type:
            return arch
        if model_type == arch.pruned_model_type:
            raise SynePruneError(
                f"this model is already a pruned syne-prune export ({model_type}); prune the unpruned "
                f"super-network instead"
            )
    raise SynePruneError(
        f"unsupported architecture '{model_type}'; syne-prune supports {', '.join(ARCHITECTURES)}"
    )
