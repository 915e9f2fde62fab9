"""Ordering an embedding model's heads and FFN neurons by importance before super-network training, as
``syne_prune.importance`` does for task models, so the first k units of every layer are the most important.

``fisher`` scores a unit by the summed squares of per-example gradients of a distillation loss with respect to its
mask (Kwon et al. 2022). The cosine and MSE distillation losses have zero gradient at the unpruned model, which is its
own teacher, so the scores use the in-batch contrastive distillation loss (``objectives.contrastive_loss``), whose
gradients there measure how much each unit tells the batch's sentences apart. ``magnitude`` uses weight norms
(``syne_prune.importance.magnitude_scores``)."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from syne_prune.errors import SynePruneError
from syne_prune.importance import ORDERED_ATTRIBUTE, ImportanceScores, magnitude_scores, permute_by_importance
from syne_prune.models import get_family
from syne_prune.surgery import InPlaceMask

from .objectives import contrastive_loss
from .pooling import Pooling, pool


def contrastive_fisher_scores(encoder: torch.nn.Module, teacher: Callable[[dict], torch.Tensor], pooling: Pooling,
                              batches: Iterable[dict]) -> ImportanceScores:
    """Fisher importance of the heads [L, H] and neurons [L, I] of ``encoder`` (a base model) under the contrastive
    distillation loss against ``teacher``'s embeddings (a callable batch -> [batch, hidden]). Raises
    ``SynePruneError`` for no examples."""
    shape = get_family(encoder.config).shape(encoder.config)
    device = next(encoder.parameters()).device
    heads = torch.zeros(shape.num_layers, shape.num_heads, dtype=torch.float64)
    neurons = torch.zeros(shape.num_layers, shape.num_neurons, dtype=torch.float64)
    count, flags = 0, [p.requires_grad for p in encoder.parameters()]
    encoder.eval().requires_grad_(False)
    masker = InPlaceMask(encoder)
    try:
        for batch in batches:
            batch = {k: v.to(device) for k, v in batch.items() if k != "labels"}
            rows = batch["input_ids"].shape[0]
            head_mask = torch.ones(shape.num_layers, rows, shape.num_heads, device=device, requires_grad=True)
            neuron_mask = torch.ones(shape.num_layers, rows, shape.num_neurons, device=device, requires_grad=True)
            masker.set_scales(head_mask, neuron_mask)
            student = pool(encoder(**batch)[0], batch["attention_mask"], pooling)
            loss = contrastive_loss(student, teacher(batch), reduction="sum")  # sum of per-example losses
            head_grad, neuron_grad = torch.autograd.grad(loss, (head_mask, neuron_mask))
            heads += head_grad.double().pow(2).sum(1).cpu()
            neurons += neuron_grad.double().pow(2).sum(1).cpu()
            count += rows
    finally:
        masker.remove()
        for parameter, flag in zip(encoder.parameters(), flags):
            parameter.requires_grad_(flag)
    if count == 0:
        raise SynePruneError("fisher importance got no sentences; give at least one training sentence")
    return ImportanceScores("fisher", heads.float(), neurons.float(), count)


def order_embedding_model(encoder: torch.nn.Module, teacher: Callable[[dict], torch.Tensor], pooling: Pooling,
                          batches: list[dict], method: str) -> dict[str, Any]:
    """Score (``fisher``: ``contrastive_fisher_scores``; ``magnitude``) and permute ``encoder`` in place (function
    preserving); records ``method`` in its config. Returns ``{"method", "num_examples", "head_order",
    "neuron_order"}`` (new position -> old index). Raises ``SynePruneError`` for another method."""
    if method == "fisher":
        scores = contrastive_fisher_scores(encoder, teacher, pooling, batches)
    elif method == "magnitude":
        scores = magnitude_scores(encoder)
    else:
        raise SynePruneError(f"unknown importance method '{method}'; choose one of fisher, magnitude, none")
    head_order, neuron_order = permute_by_importance(encoder, scores)
    setattr(encoder.config, ORDERED_ATTRIBUTE, method)
    return {"method": method, "num_examples": scores.num_examples, "head_order": head_order.tolist(), "neuron_order": neuron_order.tolist()}
