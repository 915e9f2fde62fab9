"""Head pruning (Michel et al. 2019, "Are Sixteen Heads Really Better than One?", section 4).

Head importance is the expected absolute gradient of the loss w.r.t. the head's mask variable,
``I_h = E_x |dL(x)/dm_h|`` (their eq. 2; gradients from ``importance.mask_gradients`` at the current mask),
normalized per layer by its L2 norm as in their experiments. Iteratively, the lowest-scoring remaining heads
are removed, ``head_fraction`` of all heads per step (10% in the paper), and the rest re-scored, until the
budget is met; the last step removes only as many heads as needed. FFN neurons are never pruned, so the
smallest reachable size is the model without any attention (a budget below it is refused). In a sweep the
budgets are served largest first and each continues from the previous mask, as the iterative procedure
does. Optional fine-tuning afterwards (``finetune_epochs``, default 0: the paper prunes without retraining).
"""
from __future__ import annotations

import math

import torch

from syne_prune.baselines.common import Budget, Method, PruneContext, Pruned
from syne_prune.importance import mask_gradients
from syne_prune.masks import SubnetMask


def head_importance(ctx: PruneContext, mask: SubnetMask) -> torch.Tensor:
    """``E_x |dL(x)/dm_h|`` at ``mask``, L2-normalized per layer: [L, H] (removed heads: +inf, never chosen)."""
    total, count = torch.zeros(ctx.shape.num_layers, ctx.shape.num_heads, dtype=torch.float64), 0
    for head_grad, _ in mask_gradients(ctx.model, ctx.batches(), mask):
        total += head_grad.double().abs().sum(1).cpu()
        count += head_grad.shape[1]
    scores = total / max(count, 1)
    norms = scores.norm(dim=1, keepdim=True)
    scores = torch.where(norms > 0, scores / norms.clamp_min(1e-300), scores)
    return scores.masked_fill(~mask.heads, math.inf)


def run(ctx: PruneContext, budget: Budget) -> Pruned:
    """Remove heads of ``ctx.model`` by importance until ``budget`` is met (continuing a sweep's last mask
    when its budget was larger); returns the mask and the removal order."""
    state = ctx.cache.get("head_prune")
    if state is None or state["kind"] != budget.kind or state["ratio"] < budget.ratio:
        s = ctx.shape
        state = {"mask": SubnetMask.full(s.num_layers, s.num_heads, s.num_neurons), "removed": [], "steps": 0}
    heads, neurons = state["mask"].heads.clone(), state["mask"].neurons
    removed, steps = list(state["removed"]), state["steps"]
    per_step = max(1, math.ceil(ctx.settings.head_fraction * heads.numel()))
    while not ctx.fits(SubnetMask(heads, neurons), budget):
        scores = head_importance(ctx, SubnetMask(heads, neurons))
        steps += 1
        for index in scores.flatten().argsort(stable=True)[:per_step].tolist():
            if ctx.fits(SubnetMask(heads, neurons), budget) or not heads.view(-1)[index]:
                break
            heads.view(-1)[index] = False
            removed.append(divmod(index, ctx.shape.num_heads))
    mask = SubnetMask(heads, neurons)
    ctx.cache["head_prune"] = {"kind": budget.kind, "ratio": budget.ratio, "mask": mask, "removed": removed, "steps": steps}
    return Pruned(mask, None, {"removed_heads": [list(pair) for pair in removed], "scoring_steps": steps})


def smallest(ctx: PruneContext) -> SubnetMask:
    """Every head removed, every FFN neuron kept."""
    s = ctx.shape
    return SubnetMask(torch.zeros(s.num_layers, s.num_heads, dtype=torch.bool), torch.ones(s.num_layers, s.num_neurons, dtype=torch.bool))


METHOD = Method("head-prune", run, smallest, finetune_epochs=0,
                summary="head pruning (Michel et al. 2019): iteratively remove the heads with the smallest gradient importance")
