"""The pruned classes of a family, declared by one function: a config that adds per-layer shape lists to the
stock config, and the stock base and task models, each re-shaped from those lists after the stock ``__init__``.

A family module calls ``pruned_classes`` once and binds what it returns to module-level names (for example
``PrunedBertConfig``), so each class has the module, name and qualified name that ``auto_map``, pickling and
the copied module files of an export rely on. Torch and transformers only: this module travels with exports.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import transformers
from torch import nn

from .family import TASK_HEADS

# config fields of (layers, heads, FFN neurons) in most families
STANDARD_SHAPE_FIELDS = ("num_hidden_layers", "num_attention_heads", "intermediate_size")


class PerLayerShape:
    """Mixin of the pruned config classes: ``num_heads_per_layer`` and ``intermediate_size_per_layer``,
    filled with the full shape by default and checked to hold one value in [0, full] per layer."""

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


class PrunedClasses(NamedTuple):
    """The pruned classes of one family; unpacks as (config, base model, sequence classification, multiple choice,
    token classification)."""

    config: type
    model: type
    sequence_classification: type
    multiple_choice: type
    token_classification: type

    @property
    def heads(self) -> dict[str, type]:
        """{Auto class name: pruned task-model class}, keys from ``TASK_HEADS``."""
        return {"AutoModelForSequenceClassification": self.sequence_classification,
                "AutoModelForMultipleChoice": self.multiple_choice,
                "AutoModelForTokenClassification": self.token_classification}

    def family_fields(self) -> dict[str, Any]:
        """The ``Family`` fields naming these classes: ``pruned_config``, ``pruned_model``, ``pruned_heads``."""
        return {"pruned_config": self.config, "pruned_model": self.model, "pruned_heads": self.heads}


def pruned_classes(module: str, stem: str, model_type: str, base_prefix: str, shape: Callable[[nn.Module, Any], None],
                   shape_fields: tuple[str, str, str] = STANDARD_SHAPE_FIELDS,
                   config_fields: Mapping[str, tuple[str, Any]] | None = None,
                   config_attributes: Mapping[str, Any] | None = None) -> PrunedClasses:
    """Declare ``Pruned{stem}Config``, ``Pruned{stem}Model`` and ``Pruned{stem}For{SequenceClassification,
    MultipleChoice, TokenClassification}`` in ``module`` (the caller's ``__name__``), subclassing transformers' ``{stem}Config``,
    ``{stem}Model`` and task models, and mark them for ``save_pretrained`` to write an ``auto_map``.

    The config has the pruned ``model_type``, the fields ``num_heads_per_layer`` and ``intermediate_size_per_layer``
    (checked against the config fields ``shape_fields``: layers, heads, FFN neurons), plus ``config_fields``
    ({name: (annotation, default)}) and the class attributes ``config_attributes``. Each model calls the stock
    ``__init__``, then ``shape(base model, config)`` (the base model is the task model's ``base_prefix``
    attribute), then ``post_init``."""
    stock_config = getattr(transformers, f"{stem}Config")
    config_class = _config_class(module, f"Pruned{stem}Config", stock_config, model_type, shape_fields,
                                 config_fields or {}, config_attributes or {})
    config_class.register_for_auto_class()
    base = _model_class(module, f"Pruned{stem}Model", getattr(transformers, f"{stem}Model"), config_class, None, shape)
    base.register_for_auto_class("AutoModel")
    heads = []
    for auto_name, suffix in TASK_HEADS.items():
        head = _model_class(module, f"Pruned{stem}{suffix}", getattr(transformers, f"{stem}{suffix}"), config_class,
                            base_prefix, shape)
        head.register_for_auto_class(auto_name)
        heads.append(head)
    return PrunedClasses(config_class, base, *heads)


def _config_class(module: str, name: str, stock: type, model_type: str, shape_fields: tuple[str, str, str],
                  fields: Mapping[str, tuple[str, Any]], attributes: Mapping[str, Any]) -> type:
    def __post_init__(self, **kwargs):
        super(config_class, self).__post_init__(**kwargs)
        self._init_per_layer_shape(*(getattr(self, field) for field in shape_fields))

    annotations = {"num_heads_per_layer": "list[int] | None", "intermediate_size_per_layer": "list[int] | None",
                   **{field: annotation for field, (annotation, _) in fields.items()}}
    namespace = {
        "__module__": module, "__qualname__": name, "__annotations__": annotations, "model_type": model_type,
        "__doc__": f"{stock.__name__} plus ``num_heads_per_layer`` and ``intermediate_size_per_layer`` (0 removes a block)"
                   + "".join(f", ``{field}``" for field in fields) + ".",
        "num_heads_per_layer": None, "intermediate_size_per_layer": None,
        **{field: default for field, (_, default) in fields.items()}, **attributes, "__post_init__": __post_init__,
    }
    config_class = type(name, (PerLayerShape, stock), namespace)
    return config_class


def _model_class(module: str, name: str, stock: type, config_class: type, base_prefix: str | None,
                 shape: Callable[[nn.Module, Any], None]) -> type:
    def __init__(self, config, *args, **kwargs):
        super(model_class, self).__init__(config, *args, **kwargs)
        shape(self if base_prefix is None else getattr(self, base_prefix), config)
        self.post_init()

    namespace = {"__module__": module, "__qualname__": name, "config_class": config_class, "__init__": __init__,
                 "__doc__": f"{stock.__name__} with its layers re-shaped to the config's per-layer lists."}
    model_class = type(name, (stock,), namespace)
    return model_class
