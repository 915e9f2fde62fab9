"""Apply a SubnetMask to a model: in place (for training) or by extraction (for evaluation and export).

In place, hooks multiply the per-head attention context and the FFN activations by the mask just
before the output projections; a block with nothing kept has its output projection replaced by zeros
and its LayerNorm by the identity, so the residual passes through unchanged. No weight is copied and
the mask can change at every training step.

Extraction builds a physically smaller model whose weights are slices of the super-network's: views
when every layer keeps its first k heads and first u neurons, an index copy of only the kept rows or
columns otherwise. Embeddings and the task head are shared, never copied.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

from syne_prune.errors import SynePruneError
from syne_prune.masks import SubnetMask
from syne_prune.models import Family, LayerParts, get_family, head_of, select_units


def check_mask_fits(model: PreTrainedModel, mask: SubnetMask) -> Family:
    """The family of ``model``; a mask of another layers/heads/neurons shape is a one-line SynePruneError."""
    arch = _family_of_model(model)
    shape = arch.shape(model.config)
    expected = (shape.num_layers, shape.num_heads, shape.num_neurons)
    got = (mask.num_layers, mask.heads.shape[1], mask.neurons.shape[1])
    if got != expected:
        raise SynePruneError(
            f"mask of shape layers/heads/neurons={got} does not fit a model with {expected}; "
            f"build the mask from this model's search space"
        )
    return arch


def _family_of_model(model: PreTrainedModel) -> Family:
    """``get_family``, and a one-line SynePruneError when the built model cannot be pruned."""
    family = get_family(model.config)
    problem = family.problem_with_model(model)
    if problem:
        raise SynePruneError(problem)
    return family


class InPlaceMask:
    """Hooks that make a full model compute any sub-network, switchable per step without copies.

    >>> masker = InPlaceMask(model)
    >>> masker.set(mask)      # model(...) now computes the sub-network
    >>> masker.set(None)      # the full network again
    >>> masker.remove()       # the model is as before
    """

    def __init__(self, model: PreTrainedModel) -> None:
        self.model = model
        self.arch = _family_of_model(model)
        self.shape = self.arch.shape(model.config)
        self._handles: list = []
        self._layers = list(self.arch.layers(model))
        # per layer: (head multiplier or None, attention removed, neuron multiplier or None, FFN removed)
        self._state: list[list] = [[None, False, None, False] for _ in range(self.shape.num_layers)]
        for index, layer in enumerate(self._layers):
            self._hook_layer(index, self.arch.parts(layer))

    def _hook_layer(self, index: int, parts: LayerParts) -> None:
        state = self._state[index]

        def scale(slot: int):
            def pre_hook(module, args):
                multiplier = state[slot]
                if multiplier is None:
                    return None
                return (args[0] * multiplier.to(args[0].dtype),) + tuple(args[1:])

            return pre_hook

        def zero_if_removed(slot: int):
            def hook(module, args, output):
                return torch.zeros_like(output) if state[slot] else None

            return hook

        def pass_residual_if_removed(slot: int):
            # The LayerNorm's input is projection (zeroed above) + residual, i.e. exactly the residual.
            def hook(module, args, output):
                return args[0] if state[slot] else None

            return hook

        for block, slot in (("attention", 0), ("ffn", 2)):
            projection, norm = self.arch.block_output(parts, block)
            self._handles += [projection.register_forward_pre_hook(scale(slot)),
                              projection.register_forward_hook(zero_if_removed(slot + 1))]
            if norm is not None:  # post-LayerNorm; a pre-LayerNorm block adds the (zeroed) projection to the residual
                self._handles.append(norm.register_forward_hook(pass_residual_if_removed(slot + 1)))

    def set(self, mask: SubnetMask | None) -> None:
        """Activate ``mask`` (None: the full network)."""
        if mask is None:
            for state, layer in zip(self._state, self._layers):
                state[:] = [None, False, None, False]
                restore_forward(layer)
            return
        check_mask_fits(self.model, mask)
        device = next(self.model.parameters()).device
        head_dim = self.shape.head_dim
        # The mask lives on the CPU, where .all()/.any() cost no device synchronisation; the copies to a GPU are
        # queued without waiting for it (a sandwich step sets several masks).
        for state, layer, heads, neurons in zip(self._state, self._layers, mask.heads, mask.neurons):
            state[0] = None if heads.all() else heads.repeat_interleave(head_dim).to(device, non_blocking=True)
            state[1] = not bool(heads.any())
            state[2] = None if neurons.all() else neurons.to(device, non_blocking=True)
            state[3] = not bool(neurons.any())
            # A layer with both blocks removed is exactly the identity: skip its computation entirely,
            # so a sub-network with fewer layers also trains faster.
            if state[1] and state[3]:
                layer.forward = self.arch.removed_layer_forward
            else:
                restore_forward(layer)

    def set_scales(self, heads: torch.Tensor, neurons: torch.Tensor) -> None:
        """Multiply each head's attention context and each FFN neuron's activation by a real factor.

        ``heads``: [L, H] or [L, R, H], ``neurons``: [L, I] or [L, R, I], where R (optional) gives every
        row of the batch its own factors (R = batch size, or batch size x choices for multiple choice).
        Differentiable: with factors of ones that require grad, ``backward`` yields the gradient of the
        loss w.r.t. head and neuron masks that importance scores use (Michel et al. 2019, Kwon et al.
        2022; see ``syne_prune.importance``). ``set(None)`` returns to the full network.
        """
        if heads.shape[0] != self.shape.num_layers or neurons.shape[0] != self.shape.num_layers:
            raise ValueError(f"scales for {heads.shape[0]}/{neurons.shape[0]} layers, the model has {self.shape.num_layers}")
        for state, layer, head_scale, neuron_scale in zip(self._state, self._layers, heads, neurons):
            head_scale = head_scale.repeat_interleave(self.shape.head_dim, dim=-1)
            per_row = head_scale.dim() == 2  # [R, H * head_dim] -> [R, 1, H * head_dim], broadcast over tokens
            state[:] = [head_scale[:, None] if per_row else head_scale, False,
                        neuron_scale[:, None] if neuron_scale.dim() == 2 else neuron_scale, False]
            restore_forward(layer)

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        for layer in self._layers:
            restore_forward(layer)


def restore_forward(layer: nn.Module) -> None:
    layer.__dict__.pop("forward", None)


@contextmanager
def masked(model: PreTrainedModel, mask: SubnetMask | None) -> Iterator[PreTrainedModel]:
    """``with masked(model, mask): model(...)`` computes the sub-network; hooks are removed afterwards."""
    masker = InPlaceMask(model)
    try:
        masker.set(mask)
        yield model
    finally:
        masker.remove()


def pruned_config(model: PreTrainedModel, mask: SubnetMask) -> PretrainedConfig:
    """The config of the extracted sub-network (``Family.subnet_config``).

    A stock config (loads with plain transformers) when every kept layer keeps all heads and the
    same FFN width and no block is removed; stock BERT derives the head size from the head count, so
    fewer heads always need the pruned config class.
    """
    arch = check_mask_fits(model, mask)
    kept = arch.extracted_layers(model.config, mask.kept_layers)
    heads = [mask.heads_per_layer[i] for i in kept]
    neurons = [mask.neurons_per_layer[i] for i in kept]
    config = arch.subnet_config(model.config, kept, heads, neurons)
    config._attn_implementation = model.config._attn_implementation
    return config


def _model_class(model: PreTrainedModel, arch: Family, config: PretrainedConfig) -> type[PreTrainedModel]:
    is_base = model.base_model is model
    head = head_of(model)
    if not (is_base or head):
        raise SynePruneError(
            f"{type(model).__name__} is not supported; syne-prune prunes base models, *ForSequenceClassification "
            f"models (classification and regression) and *ForMultipleChoice models"
        )
    if config.model_type == arch.pruned_model_type:
        _, base_class, heads = arch.pruned_classes
        return base_class if is_base else heads[head]
    return type(model)


def extract_subnetwork(model: PreTrainedModel, mask: SubnetMask, share_weights: bool = True) -> PreTrainedModel:
    """A physically smaller model that computes exactly what ``masked(model, mask)`` computes.

    With ``share_weights`` (default) its tensors are views of, or index copies from, the super-network
    and it shares embeddings and head with it: cheap, but training it changes the super-network.
    ``share_weights=False`` gives an independent, contiguous copy (what export writes).
    """
    arch = check_mask_fits(model, mask)
    config = pruned_config(model, mask)
    cls = _model_class(model, arch, config)
    with torch.device("meta"):
        sub = cls(config)

    source = dict(model.state_dict(keep_vars=False))
    kept = arch.extracted_layers(model.config, mask.kept_layers)
    slicers = _layer_slicers(model, arch, mask, kept)
    prefix = arch.layers_prefix(model)
    state: dict[str, torch.Tensor] = {}
    for name in sub.state_dict():
        if name.startswith(prefix):
            index, rest = name[len(prefix):].split(".", 1)
            source_layer = kept[int(index)]
            tensor = source[f"{prefix}{source_layer}.{rest}"]
            slicer = slicers[source_layer].get(rest)
            tensor = slicer(tensor) if slicer else tensor
        else:
            tensor = source[name]
        state[name] = tensor.detach() if share_weights else tensor.detach().clone(memory_format=torch.contiguous_format)
    sub.load_state_dict(state, strict=True, assign=True)

    source_buffers = dict(model.named_buffers())
    for name, buffer in list(sub.named_buffers()):
        if buffer.is_meta:  # non-persistent buffers (position ids) are not in the state dict
            module_name, _, buffer_name = name.rpartition(".")
            sub.get_submodule(module_name).register_buffer(
                buffer_name, source_buffers[_source_name(name, prefix, kept)].clone(), persistent=False
            )
    sub.train(model.training)
    return sub


def _source_name(name: str, prefix: str, kept: list[int]) -> str:
    if not name.startswith(prefix):
        return name
    index, rest = name[len(prefix):].split(".", 1)
    return f"{prefix}{kept[int(index)]}.{rest}"


def _layer_slicers(model: PreTrainedModel, arch: Family, mask: SubnetMask, kept: list[int]) -> dict[int, dict]:
    """Per source layer: parameter name (inside the layer) -> function that slices that tensor."""
    head_dim = arch.shape(model.config).head_dim
    slicers: dict[int, dict] = {}
    for index in kept:
        heads, neurons = mask.heads[index], mask.neurons[index]
        per_layer: dict = {}
        if heads.any() and not heads.all():
            per_layer.update(_slicers(arch.head_axes(), _selector(heads, head_dim)))
        if neurons.any() and not neurons.all():
            per_layer.update(_slicers(arch.neuron_axes(), _selector(neurons, 1)))
        slicers[index] = per_layer
    return slicers


def _slicers(axes, units) -> dict:
    return {axis.name: (lambda t, axis=axis: select_units(t, axis, units)) for axis in axes}


def _selector(kept: torch.Tensor, width: int) -> slice | torch.Tensor:
    """A slice (for a first-k mask, so slicing gives a view) or an index tensor of kept units."""
    count = int(kept.sum())
    if bool(kept[:count].all()):
        return slice(0, count * width)
    index = torch.nonzero(kept).flatten()
    return (index[:, None] * width + torch.arange(width)[None, :]).flatten()
