"""Layer dropping (Sajjad et al. 2022, "On the Effect of Dropping Layers of Pre-trained Transformer Models"):
remove the top layers until the budget is met, then fine-tune the remaining network (``finetune_epochs``,
default 3, in the shared training loop; ``run.py`` does the fine-tuning). Their best strategy for BERT is
top-layer dropping, which keeps the embeddings and the bottom layers unchanged.
"""
from __future__ import annotations

import torch

from syne_prune.baselines.common import Budget, Method, PruneContext, Pruned
from syne_prune.masks import SubnetMask


def bottom_layers(ctx: PruneContext, count: int) -> SubnetMask:
    """All heads and neurons of the first ``count`` layers, nothing of the others."""
    s = ctx.shape
    kept = (torch.arange(s.num_layers) < count)[:, None]
    return SubnetMask(kept.expand(s.num_layers, s.num_heads).clone(), kept.expand(s.num_layers, s.num_neurons).clone())


def run(ctx: PruneContext, budget: Budget) -> Pruned:
    """The most bottom layers whose sub-network meets ``budget`` (``smallest`` is checked before, so 0 fits)."""
    count = next(k for k in range(ctx.shape.num_layers, -1, -1) if ctx.fits(bottom_layers(ctx, k), budget))
    return Pruned(bottom_layers(ctx, count), None, {"kept_layers": count})


def smallest(ctx: PruneContext) -> SubnetMask:
    """No layer left (embeddings and task head only)."""
    return bottom_layers(ctx, 0)


METHOD = Method("layer-drop", run, smallest, finetune_epochs=3,
                summary="layer dropping (Sajjad et al. 2022): remove the top layers, then fine-tune")
