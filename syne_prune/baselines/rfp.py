"""Retraining-free pruning (Kwon et al. 2022, "A Fast Post-Training Pruning Framework for Transformers").

Three steps, no retraining:

1. **Mask search** (their Algorithm 1). With a diagonal Fisher information of the head and neuron masks,
   ``I_u = sum_x (dL(x)/dm_u)^2`` (``importance.fisher_scores``), the loss increase of removing a set Z is about
   ``1/2 sum_{u in Z} I_u``. Heads and neurons each have one cost (parameters or MACs per unit, ``unit_costs``);
   for every number of kept heads n_h the best choice keeps the n_h highest-scoring heads and fills the rest of
   the budget with the highest-scoring neurons; the n_h that keeps the most Fisher mass wins. The exact count
   of ``subnet_size`` (block constants: the output bias and LayerNorm of a block kept while any unit is) is
   then enforced: lowest-scoring neurons are dropped until the mask fits, freed room is refilled.
2. **Mask rearrangement** (their section 4.2). Within a layer the Fisher matrix is not diagonal; with the
   block-diagonal Fisher ``F_l = sum_x g_l(x) g_l(x)^T`` (one block for a layer's heads, one for its neurons)
   the loss increase is ``1/2 1_Z^T F_l 1_Z``. Keeping each layer's unit count, Z is rebuilt greedily (the unit
   with the smallest increase joins Z) and refined by swaps of a kept and a removed unit while that lowers the
   objective; a layer keeps its step-1 choice when neither is better.
3. **Mask tuning** (their section 4.3, ``mask_tuning.py``): layer by layer, the kept units' outputs are scaled
   by the least-squares solution that best reconstructs the unpruned layer's output; the scales are folded
   into the exported weights.
"""
from __future__ import annotations

import math
import time

import torch

from syne_prune.baselines.common import Budget, Method, PruneContext, Pruned
from syne_prune.baselines.mask_tuning import tune_masks
from syne_prune.errors import SynePruneError
from syne_prune.importance import mask_gradients
from syne_prune.masks import SubnetMask
from syne_prune.surgery import extract_subnetwork

SWAP_ROUNDS = 50  # swap refinement stops earlier when no swap lowers the objective


def unit_costs(ctx: PruneContext, kind: str) -> tuple[int, int, int]:
    """(cost of one head, cost of one neuron, cost of all block constants), in parameters or MACs per sequence,
    from the family's layer formula (``Family.layer_size``, the one ``objectives.subnet_size`` sums): a block's
    size is linear in its units, so a unit costs the difference of two units and one, and a block's constants
    (output bias, LayerNorm) are its size with one unit less that unit's cost."""
    s, n, config = ctx.shape, ctx.settings.seq_len, ctx.model.config
    Budget(kind, 1.0)  # checks the kind
    column = 1 if kind == "macs" else 0  # layer_size gives (parameters, MACs); a layer's parameters are all prunable

    def size(index: int, heads: int, neurons: int) -> int:
        return ctx.arch.layer_size(s, config, index, heads, neurons, n)[column]
    last = s.num_layers - 1
    head, neuron = size(last, 2, 0) - size(last, 1, 0), size(last, 0, 2) - size(last, 0, 1)
    constants = sum(size(index, 1, 0) - head + size(index, 0, 1) - neuron for index in range(s.num_layers))
    return head, neuron, constants


def fisher_matrices(ctx: PruneContext) -> dict[str, torch.Tensor]:
    """Block-diagonal empirical Fisher of the masks, ``F = sum_x g(x) g(x)^T`` per layer (Kwon et al. 2022, eq. 7):
    ``heads`` [L, H, H] and ``neurons`` [L, I, I] (float64, CPU); their diagonals are ``fisher_scores``. Cached."""
    if "fisher" not in ctx.cache:
        started = time.perf_counter()
        s = ctx.shape
        heads = torch.zeros(s.num_layers, s.num_heads, s.num_heads, dtype=torch.float64)
        neurons = torch.zeros(s.num_layers, s.num_neurons, s.num_neurons, dtype=torch.float64)
        for head_grad, neuron_grad in mask_gradients(ctx.model, ctx.batches()):
            heads += torch.einsum("lnh,lng->lhg", head_grad, head_grad).double().cpu()
            neurons += torch.einsum("lni,lnj->lij", neuron_grad, neuron_grad).double().cpu()
        ctx.cache["fisher"] = {"heads": heads, "neurons": neurons, "time_s": time.perf_counter() - started}
    return ctx.cache["fisher"]


def search_mask(ctx: PruneContext, budget: Budget, head_scores: torch.Tensor, neuron_scores: torch.Tensor) -> SubnetMask:
    """Step 1: the mask that keeps the most Fisher mass under ``budget`` (Kwon et al. 2022, Algorithm 1), then
    made exact by ``subnet_size``. Scores: [L, H] and [L, I]."""
    head_cost, neuron_cost, constants = unit_costs(ctx, budget.kind)
    fixed = ctx.count(ctx.empty_mask(), budget.kind)
    room = ctx.limit(budget) - fixed - constants
    heads_sorted = head_scores.flatten().sort(descending=True)
    neurons_sorted = neuron_scores.flatten().sort(descending=True)
    head_mass = torch.cat([torch.zeros(1, dtype=torch.float64), heads_sorted.values.double().cumsum(0)])
    neuron_mass = torch.cat([torch.zeros(1, dtype=torch.float64), neurons_sorted.values.double().cumsum(0)])
    best, best_mass = (0, 0), -math.inf
    for kept_heads in range(head_scores.numel() + 1):
        left = room - kept_heads * head_cost
        if left < 0:
            break
        kept_neurons = min(neuron_scores.numel(), left // neuron_cost)
        mass = float(head_mass[kept_heads] + neuron_mass[kept_neurons])
        if mass > best_mass:
            best, best_mass = (kept_heads, kept_neurons), mass
    heads = torch.zeros(head_scores.numel(), dtype=torch.bool)
    heads[heads_sorted.indices[: best[0]]] = True
    neurons = torch.zeros(neuron_scores.numel(), dtype=torch.bool)
    neurons[neurons_sorted.indices[: best[1]]] = True
    mask = SubnetMask(heads.view_as(head_scores), neurons.view_as(neuron_scores))
    return _make_exact(ctx, budget, mask, neurons_sorted.indices, heads_sorted.indices)


def _make_exact(ctx: PruneContext, budget: Budget, mask: SubnetMask, neuron_order: torch.Tensor, head_order: torch.Tensor) -> SubnetMask:
    """Drop the lowest-scoring kept neurons (then heads) until ``mask`` fits; then add the best removed neurons
    while they fit (the cost estimate counted every block's constants, which removed blocks free). Neurons
    go and come in groups sized by the gap to the limit, so ``subnet_size`` runs a few times, not per neuron."""
    heads, neurons = mask.heads.clone(), mask.neurons.clone()
    flat, limit = neurons.view(-1), ctx.limit(budget)
    _, neuron_cost, _ = unit_costs(ctx, budget.kind)
    order = neuron_order.tolist()
    kept = [i for i in reversed(order) if flat[i]]  # lowest score first

    def count() -> int:
        return ctx.count(SubnetMask(heads, neurons), budget.kind)
    while (over := count() - limit) > 0:
        if kept:
            for _ in range(min(len(kept), max(1, -(-over // neuron_cost)))):
                flat[kept.pop(0)] = False
        elif heads.any():  # no neurons left: the lowest-scoring kept head goes
            heads.view(-1)[next(i for i in reversed(head_order.tolist()) if heads.view(-1)[i])] = False
        else:
            break
    candidates = [i for i in order if not flat[i]]  # best score first
    while candidates and (room := limit - count()) >= neuron_cost:
        group, candidates = candidates[: room // neuron_cost], candidates[room // neuron_cost:]
        flat[group] = True
        while count() > limit:  # a group that reopened a removed block also pays its constants
            flat[group.pop()] = False
    return SubnetMask(heads, neurons)


def removal_loss(fisher: torch.Tensor, kept: torch.Tensor) -> float:
    """``1_Z^T F 1_Z`` for the removed units Z of one layer (``kept``: bool [U], ``fisher``: [U, U])."""
    removed = (~kept).double()
    return float(removed @ fisher @ removed)


def rearrange_layer(fisher: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    """Step 2 for one layer: the kept set of the same size with the smallest ``removal_loss`` found by greedy
    construction of the removed set and then swaps; returns ``kept`` itself when that is not improved."""
    count_removed = int((~kept).sum())
    if count_removed in (0, kept.numel()):
        return kept
    diagonal = fisher.diagonal()
    removed = torch.zeros_like(kept)
    coupling = torch.zeros_like(diagonal)  # F @ 1_Z
    for _ in range(count_removed):
        increase = diagonal + 2 * coupling
        increase[removed] = math.inf
        unit = int(increase.argmin())
        removed[unit] = True
        coupling += fisher[:, unit]
    for _ in range(SWAP_ROUNDS):
        out_of_z, into_z = removed.nonzero().flatten(), (~removed).nonzero().flatten()
        # change of 1_Z^T F 1_Z when unit i leaves Z and unit j joins it
        leave = -(2 * coupling[out_of_z] - diagonal[out_of_z])
        join = 2 * coupling[into_z] + diagonal[into_z]
        change = leave[:, None] + join[None, :] - 2 * fisher[out_of_z][:, into_z]
        best = int(change.argmin())
        if float(change.view(-1)[best]) >= -1e-12 * max(1.0, float(diagonal.abs().max())):
            break
        i, j = out_of_z[best // len(into_z)], into_z[best % len(into_z)]
        removed[i], removed[j] = False, True
        coupling += fisher[:, j] - fisher[:, i]
    candidate = ~removed
    return candidate if removal_loss(fisher, candidate) < removal_loss(fisher, kept) else kept


def rearrange(mask: SubnetMask, fisher: dict[str, torch.Tensor]) -> tuple[SubnetMask, dict[str, float]]:
    """Step 2 for every layer's heads and neurons; returns the mask and the summed objective before/after."""
    heads, neurons = mask.heads.clone(), mask.neurons.clone()
    before = after = 0.0
    for layer in range(mask.num_layers):
        for kept, block in ((heads, fisher["heads"][layer]), (neurons, fisher["neurons"][layer])):
            before += removal_loss(block, kept[layer])
            kept[layer] = rearrange_layer(block, kept[layer])
            after += removal_loss(block, kept[layer])
    return SubnetMask(heads, neurons), {"before": before, "after": after}


def run(ctx: PruneContext, budget: Budget) -> Pruned:
    """Search, rearrange and tune a mask of ``ctx.model`` under ``budget``; returns the tuned sub-network."""
    started = time.perf_counter()
    fisher = fisher_matrices(ctx)
    head_scores = fisher["heads"].diagonal(dim1=1, dim2=2).float()
    neuron_scores = fisher["neurons"].diagonal(dim1=1, dim2=2).float()
    mask = search_mask(ctx, budget, head_scores, neuron_scores)
    searched = ctx.count(mask, budget.kind)
    mask, objective = rearrange(mask, fisher)
    if ctx.count(mask, budget.kind) != searched:  # unit counts per layer are kept, so the size is too
        raise SynePruneError("mask rearrangement changed the sub-network's size; report this as a bug")
    subnetwork = extract_subnetwork(ctx.model, mask, share_weights=False).eval()
    tuning = tune_masks(ctx, mask, subnetwork)
    return Pruned(mask, subnetwork, {
        "fisher_examples": min(len(ctx.train), ctx.settings.examples), "fisher_time_s": fisher["time_s"],
        "rearrangement_objective": objective, "mask_tuning": tuning, "time_s": time.perf_counter() - started})


def smallest(ctx: PruneContext) -> SubnetMask:
    """Nothing of the encoder: RFP may remove every head and neuron."""
    return ctx.empty_mask()


METHOD = Method("rfp", run, smallest, finetune_epochs=0,
                summary="retraining-free pruning (Kwon et al. 2022): Fisher mask search, rearrangement, least-squares mask tuning")
