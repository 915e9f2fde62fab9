"""Mask tuning of retraining-free pruning (Kwon et al. 2022, section 4.3): layer-wise least squares.

For one block (attention or FFN) of a pruned layer with kept units u (heads or neurons), the block's output
before its LayerNorm is ``sum_u m_u C_u(x) + bias + x``, where ``C_u`` is unit u's part of the output projection
(head: its context times its columns of the attention output weight; neuron: its activation times its column
of the FFN output weight) and x the block input. With x taken from the pruned model (tuned up to this block)
and the target T = the same block's pre-LayerNorm output in the unpruned model on the same examples, the scales
solve the linear least squares problem ``min_m ||A m - b||^2`` over all non-padding tokens, with
``A[:, u] = C_u(x)`` and ``b = T - bias - x``. The normal equations ``G = A^T A``, ``r = A^T b`` are accumulated
batch by batch (heads: ``G = sum_t P_h(t) . P_g(t)``; neurons: ``G = (act^T act) * (W^T W)``, ``r = sum_t act(t) *
(b(t) W)``), so no token matrix is stored. Kwon et al. solve with LSMR and damping; here a ridge term pulls
m towards the untuned scales 1, ``(G + lambda I) m = r + lambda 1`` with ``lambda = RIDGE * mean(diag G)``, so the
reconstruction error is never above the untuned one; scales are clamped to [-10, 10] as in their code.
The scales are folded into the output projection's columns (exact: the projection is linear in each unit).
"""
from __future__ import annotations

from typing import Any

import torch
from transformers import PreTrainedModel

from syne_prune.baselines.common import PruneContext
from syne_prune.masks import SubnetMask
from syne_prune.surgery import _restore_forward

RIDGE = 1e-4
SCALE_LIMIT = 10.0


class _Stop(Exception):
    """Ends a forward pass once the block of interest is captured (the layers above are not needed)."""


def _run_layer(model: PreTrainedModel, ctx: PruneContext, index: int, batch: dict, hidden: torch.Tensor | None,
               hooks: list[tuple[torch.nn.Module, str, str]]) -> dict[str, torch.Tensor]:
    """Run layer ``index`` of ``model`` on ``hidden`` (its input, [rows, seq, hidden]; None: the embeddings) and stop
    when the last of ``hooks`` fires; the layers below are skipped (the embeddings' output is replaced by ``hidden``).
    ``hooks``: (module, "pre"|"post", name). Returns name -> the hooked input ("pre") or output ("post"): the whole
    tensor for the layer itself (``output``), else [non-padding tokens, width] in double precision."""
    captured: dict[str, torch.Tensor] = {}
    device = next(model.parameters()).device
    inputs = {k: v.to(device) for k, v in batch.items() if k != "labels"}
    tokens = inputs["attention_mask"].reshape(-1).bool()
    layers = ctx.arch.layers(model)
    handles = []
    if hidden is not None:
        handles.append(ctx.arch.base_model(model).embeddings.register_forward_hook(lambda module, args, output: hidden))
    for position, (module, when, name) in enumerate(hooks):
        last = position == len(hooks) - 1

        def hook(module, args, output=None, name=name, when=when, last=last):
            value = args[0] if when == "pre" else output
            value = value[0] if isinstance(value, tuple) else value
            captured[name] = value.detach() if name == "output" else value.reshape(-1, value.shape[-1])[tokens].detach().double()
            if last:
                raise _Stop
        handles.append(module.register_forward_pre_hook(hook) if when == "pre" else module.register_forward_hook(hook))
    for layer in list(layers)[:index]:
        layer.forward = ctx.arch.removed_layer_forward
    try:
        with torch.no_grad():
            model(**inputs)
    except _Stop:
        pass
    finally:
        for handle in handles:
            handle.remove()
        for layer in list(layers)[:index]:
            _restore_forward(layer)
    return captured


def _block_modules(ctx: PruneContext, layer: torch.nn.Module, block: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(output projection, LayerNorm) of a layer's ``attention`` or ``ffn`` block."""
    paths = ctx.arch.part_paths
    projection, norm = (paths[3], paths[4]) if block == "attention" else (paths[6], paths[7])
    return layer.get_submodule(projection), layer.get_submodule(norm)


def _normal_equations(ctx: PruneContext, block: str, weight: torch.Tensor, units: torch.Tensor, target: torch.Tensor,
                      rest: torch.Tensor, state: dict[str, Any]) -> None:
    """Add one batch's tokens to G, r and ||b||^2. ``units``: [T, k * head_dim] contexts or [T, u] activations;
    ``weight``: the output projection [hidden, k * head_dim | u] (double); ``rest``: bias + block input [T, hidden]."""
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
    return scales, error(ones), error(scales)


def tune_masks(ctx: PruneContext, mask: SubnetMask, subnetwork: PreTrainedModel) -> list[dict[str, Any]]:
    """Tune ``subnetwork`` (the extracted ``mask`` of ``ctx.model``) in place, block after block from the bottom.

    The input of every layer is kept per batch for both models, so each layer runs a few times (teacher once,
    pruned model once per block and once more for its tuned output) instead of the whole network per block.
    Returns one record per tuned block: ``layer`` (index in the unpruned model), ``block`` (attention/ffn),
    ``units`` kept, ``error_untuned`` and ``error_tuned`` (squared reconstruction error summed over tokens and
    hidden units, on the ``settings.examples`` training examples), ``scale_min``/``scale_max``."""
    batches = ctx.batches()
    teacher_layers, student_layers = ctx.arch.layers(ctx.model), ctx.arch.layers(subnetwork)
    teacher_in: list[torch.Tensor | None] = [None] * len(batches)
    student_in: list[torch.Tensor | None] = [None] * len(batches)
    kept_layers = mask.kept_layers
    records = []
    for layer in range(mask.num_layers):
        targets = {"attention": [], "ffn": []}
        teacher_layer = teacher_layers[layer]
        for i, batch in enumerate(batches):
            c = _run_layer(ctx.model, ctx, layer, batch, teacher_in[i], [
                (_block_modules(ctx, teacher_layer, "attention")[1], "pre", "attention"),
                (_block_modules(ctx, teacher_layer, "ffn")[1], "pre", "ffn"), (teacher_layer, "post", "output")])
            targets["attention"].append(c["attention"].float())
            targets["ffn"].append(c["ffn"].float())
            teacher_in[i] = c["output"]
        if layer not in kept_layers:
            continue  # removed entirely: the pruned model's hidden states pass through unchanged
        index = kept_layers.index(layer)
        student_layer = student_layers[index]
        for block, kept in (("attention", mask.heads[layer]), ("ffn", mask.neurons[layer])):
            if not kept.any():
                continue
            projection, norm = _block_modules(ctx, student_layer, block)
            weight = projection.weight.detach().double()
            state: dict[str, Any] = {}
            for i, batch in enumerate(batches):
                c = _run_layer(subnetwork, ctx, index, batch, student_in[i],
                               [(projection, "pre", "units"), (projection, "post", "projected"), (norm, "pre", "sum")])
                rest = c["sum"] - c["projected"] + projection.bias.detach().double()
                _normal_equations(ctx, block, weight, c["units"], targets[block][i].double(), rest, state)
            scales, untuned, tuned = _solve(block, weight, state)
            width = ctx.shape.head_dim if block == "attention" else 1
            with torch.no_grad():
                projection.weight.mul_(scales.repeat_interleave(width).to(projection.weight.dtype)[None, :])
            records.append({"layer": layer, "block": block, "units": int(kept.sum()), "error_untuned": untuned,
                            "error_tuned": tuned, "scale_min": float(scales.min()), "scale_max": float(scales.max())})
        for i, batch in enumerate(batches):
            student_in[i] = _run_layer(subnetwork, ctx, index, batch, student_in[i], [(student_layer, "post", "output")])["output"]
    return records
