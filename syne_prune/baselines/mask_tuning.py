"""Mask tuning of retraining-free pruning (Kwon et al. 2022, section 4.3): layer-wise least squares.

For one block (attention or FFN) of a pruned layer with kept units u (heads or neurons), the block's output at
its reconstruction point (``Family.reconstruction_point``) is ``sum_u m_u C_u(x) + rest``, where ``C_u`` is unit
u's part of the output projection (head: its context times its columns of the attention output weight; neuron:
its activation times its column of the FFN output weight) and x the block input. ``rest`` does not depend on
the scales: for a post-LayerNorm block (BERT, DeBERTa) the point is the LayerNorm's input and rest = projection
bias + residual x; for a pre-LayerNorm block (ModernBERT) it is the residual-branch output before it is added
to the stream, and rest = the projection bias (none in ModernBERT by default). With x taken from the pruned
model (tuned up to this block) and the target T = the unpruned model's output at the same point on the same
examples, the scales solve the linear least squares problem ``min_m ||A m - b||^2`` over all non-padding
tokens, with ``A[:, u] = C_u(x)`` and ``b = T - rest``. The normal equations ``G = A^T A``, ``r = A^T b`` are
accumulated batch by batch (heads: ``G = sum_t P_h(t) . P_g(t)``; neurons: ``G = (act^T act) * (W^T W)``,
``r = sum_t act(t) * (b(t) W)``), so no token matrix is stored. Kwon et al. solve with LSMR and damping; here a
ridge term pulls m towards the untuned scales 1, ``(G + lambda I) m = r + lambda 1`` with ``lambda = RIDGE *
mean(diag G)``; scales are clamped to [-10, 10] as in their code, and where the error would come out above the
untuned one (rounding when it is near 0, or the clamp) the scales stay 1, so it never is. The scales are
folded into the output projection's columns (exact: the projection is linear in each unit).
"""
from __future__ import annotations

from typing import Any

import torch
from transformers import PreTrainedModel

from syne_prune.baselines.common import PruneContext
from syne_prune.masks import SubnetMask
from syne_prune.surgery import restore_forward

RIDGE = 1e-4
SCALE_LIMIT = 10.0


class _Stop(Exception):
    """Ends a forward pass once the block of interest is captured (the layers above are not needed)."""


NEXT = "next"  # hook name of the next layer's input, captured whole


def _first_input(args: tuple, kwargs: dict) -> torch.Tensor:
    return args[0] if args else kwargs["hidden_states"]


def _run_layer(model: PreTrainedModel, ctx: PruneContext, index: int, batch: dict, hidden: torch.Tensor | None,
               hooks: list[tuple[torch.nn.Module, str, str]]) -> dict[str, torch.Tensor]:
    """Run layer ``index`` of ``model`` on ``hidden`` (its input, [rows, seq, hidden]; None: the model's own, from the
    embeddings) and stop when the last of ``hooks`` fires; the layers below run as identities. ``hooks``: (module,
    "input"|"output", name), in the order they fire. Returns name -> the hooked input or output: the whole tensor
    for ``NEXT`` (the input of layer ``index + 1``, after anything the encoder does between layers, such as
    DeBERTa's convolution after layer 0), else [non-padding tokens, width] in double precision."""
    captured: dict[str, torch.Tensor] = {}
    device = next(model.parameters()).device
    inputs = {k: v.to(device) for k, v in batch.items() if k != "labels"}
    tokens = inputs["attention_mask"].reshape(-1).bool()
    layers = list(ctx.arch.layers(model))
    handles = []
    if hidden is not None:
        def feed(module, args, kwargs):
            return ((hidden, *args[1:]), kwargs) if args else (args, {**kwargs, "hidden_states": hidden})
        handles.append(layers[index].register_forward_pre_hook(feed, with_kwargs=True))
    for position, (module, when, name) in enumerate(hooks):
        last = position == len(hooks) - 1

        def hook(module, args, kwargs_or_output, name=name, when=when, last=last):
            value = _first_input(args, kwargs_or_output) if when == "input" else kwargs_or_output
            value = value[0] if isinstance(value, tuple) else value
            captured[name] = value.detach() if name == NEXT else value.reshape(-1, value.shape[-1])[tokens].detach().double()
            if last:
                raise _Stop
        handles.append(module.register_forward_pre_hook(hook, with_kwargs=True) if when == "input"
                       else module.register_forward_hook(hook))
    for layer in layers[:index]:
        layer.forward = ctx.arch.removed_layer_forward
    try:
        with torch.no_grad():
            model(**inputs)
    except _Stop:
        pass
    finally:
        for handle in handles:
            handle.remove()
        for layer in layers[:index]:
            restore_forward(layer)
    return captured


def _same_module(layer: torch.nn.Module, module: torch.nn.Module, other: torch.nn.Module) -> torch.nn.Module:
    """The module of ``other`` (a pruned copy of ``layer``) at the path where ``layer`` holds ``module``."""
    return other.get_submodule(next(path for path, m in layer.named_modules() if m is module))


def _normal_equations(ctx: PruneContext, block: str, weight: torch.Tensor, units: torch.Tensor, target: torch.Tensor,
                      rest: torch.Tensor, state: dict[str, Any]) -> None:
    """Add one batch's tokens to G, r and ||b||^2. ``units``: [T, k * head_dim] contexts or [T, u] activations;
    ``weight``: the output projection [hidden, k * head_dim | u] (double); ``rest``: what the scales do not change at
    the reconstruction point (bias, residual) [T, hidden]."""
    b = target - rest
    if block == "attention":
        d = ctx.shape.head_dim
        k = units.shape[1] // d
        parts = torch.einsum("tkd,okd->tko", units.view(-1, k, d), weight.view(-1, k, d))  # [T, k, hidden]
        gram = torch.einsum("tko,tgo->kg", parts, parts)
        right = torch.einsum("tko,to->k", parts, b)
    else:
        gram = units.T @ units  # multiplied by W^T W once, in _solve
        right = (units * (b @ weight)).sum(0)
    for name, value in (("gram", gram), ("right", right), ("b2", (b * b).sum())):
        state[name] = state.get(name, 0) + value


def _solve(block: str, weight: torch.Tensor, state: dict[str, Any]) -> tuple[torch.Tensor, float, float]:
    """The ridge least-squares scales and the reconstruction errors ||A m - b||^2 untuned (m = 1) and tuned."""
    gram = state["gram"] * (weight.T @ weight) if block == "ffn" else state["gram"]
    right, b2 = state["right"], state["b2"]
    ones = torch.ones_like(right)
    ridge = RIDGE * float(gram.diagonal().mean().clamp_min(1e-30))
    scales = torch.linalg.solve(gram + ridge * torch.eye(len(right), dtype=gram.dtype, device=gram.device), right + ridge * ones)
    scales = scales.clamp(-SCALE_LIMIT, SCALE_LIMIT)

    def error(m: torch.Tensor) -> float:
        return float(m @ gram @ m - 2 * m @ right + b2)
    untuned, tuned = error(ones), error(scales)
    if tuned > untuned:  # only by rounding (an error near 0: nothing to fix) or the clamp: keep the untuned scales
        return ones, untuned, untuned
    return scales, untuned, tuned


def _teacher_pass(ctx: PruneContext, layer: int, batches: list[dict], inputs: list) -> tuple[dict[str, list], list]:
    """The unpruned model's outputs of layer ``layer``'s blocks at their reconstruction points (per block, per
    batch: [tokens, hidden]) and the inputs of the next layer (None after the last)."""
    layers = ctx.arch.layers(ctx.model)
    parts = ctx.arch.parts(layers[layer])
    hooks = [(*ctx.arch.reconstruction_point(parts, block), block) for block in ("attention", "ffn")]
    if layer + 1 < len(layers):
        hooks.append((layers[layer + 1], "input", NEXT))
    targets: dict[str, list] = {"attention": [], "ffn": []}
    following = []
    for batch, hidden in zip(batches, inputs):
        c = _run_layer(ctx.model, ctx, layer, batch, hidden, hooks)
        targets["attention"].append(c["attention"].float())
        targets["ffn"].append(c["ffn"].float())
        following.append(c.get(NEXT))
    return targets, following


def _tune_block(ctx: PruneContext, subnetwork: PreTrainedModel, layer: int, index: int, block: str, batches: list[dict],
                inputs: list, targets: list[torch.Tensor]) -> dict[str, Any]:
    """Tune the ``block`` of source layer ``layer`` (layer ``index`` of ``subnetwork``, fed ``inputs`` per batch)
    towards ``targets``; folds the scales into its output projection and returns its record."""
    teacher_layer, student_layer = ctx.arch.layers(ctx.model)[layer], ctx.arch.layers(subnetwork)[index]
    parts = ctx.arch.parts(teacher_layer)  # the student's own parts may lack a removed block's modules
    projection = _same_module(teacher_layer, ctx.arch.block_output(parts, block)[0], student_layer)
    point, when = ctx.arch.reconstruction_point(parts, block)
    point = _same_module(teacher_layer, point, student_layer)
    weight = projection.weight.detach().double()
    bias = projection.bias.detach().double() if projection.bias is not None else 0.0
    state: dict[str, Any] = {}
    for batch, hidden, target in zip(batches, inputs, targets):
        c = _run_layer(subnetwork, ctx, index, batch, hidden,
                       [(projection, "input", "units"), (projection, "output", "projected"), (point, when, "sum")])
        _normal_equations(ctx, block, weight, c["units"], target.double(), c["sum"] - c["projected"] + bias, state)
    scales, untuned, tuned = _solve(block, weight, state)
    width = ctx.shape.head_dim if block == "attention" else 1
    with torch.no_grad():
        projection.weight.mul_(scales.repeat_interleave(width).to(projection.weight.dtype)[None, :])
    return {"layer": layer, "block": block, "units": len(scales), "error_untuned": untuned, "error_tuned": tuned,
            "scale_min": float(scales.min()), "scale_max": float(scales.max())}


def tune_masks(ctx: PruneContext, mask: SubnetMask, subnetwork: PreTrainedModel) -> list[dict[str, Any]]:
    """Tune ``subnetwork`` (the extracted ``mask`` of ``ctx.model``) in place, block after block from the bottom.

    The input of every layer is kept per batch for both models, so each layer runs a few times (teacher once,
    pruned model once per block and once more for its tuned output) instead of the whole network per block.
    The sub-network's layers are ``Family.extracted_layers`` of the mask (a removed layer may stay as an
    identity). Returns one record per tuned block: ``layer`` (index in the unpruned model), ``block``
    (attention/ffn), ``units`` kept, ``error_untuned`` and ``error_tuned`` (squared reconstruction error summed
    over tokens and hidden units, on the ``settings.examples`` training examples), ``scale_min``/``scale_max``."""
    batches = ctx.batches()
    extracted = ctx.arch.extracted_layers(ctx.model.config, mask.kept_layers)
    student_layers = ctx.arch.layers(subnetwork)
    teacher_in: list[torch.Tensor | None] = [None] * len(batches)
    student_in: list[torch.Tensor | None] = [None] * len(batches)
    records = []
    for layer in range(mask.num_layers):
        targets, teacher_next = _teacher_pass(ctx, layer, batches, teacher_in)
        teacher_in = teacher_next
        if layer not in extracted:
            continue  # removed entirely: the pruned model's hidden states pass through unchanged
        index = extracted.index(layer)
        for block, kept in (("attention", mask.heads[layer]), ("ffn", mask.neurons[layer])):
            if kept.any():
                records.append(_tune_block(ctx, subnetwork, layer, index, block, batches, student_in, targets[block]))
        if index + 1 < len(student_layers):
            student_in = [_run_layer(subnetwork, ctx, index, batch, hidden, [(student_layers[index + 1], "input", NEXT)])[NEXT]
                          for batch, hidden in zip(batches, student_in)]
    return records
