"""Importance of attention heads and FFN neurons, and rewiring a model so that index order = importance.

The ``small``, ``medium`` and ``layer`` search spaces keep the *first* k heads and u neurons of a layer,
but the heads and neurons of a pre-trained layer are in no particular order. As DynaBERT does before
training width-adaptive networks (Hou et al. 2020, section 3.1), ``order_by_importance`` scores every
head and neuron on a few task examples and permutes each layer so that its most important units come
first; small sub-networks then keep the important parts. The permutation is exactly function-preserving:
the heads of a layer are summed after the output projection and its neurons likewise, so reordering
them (together with the rows and columns of the weights that belong to them) changes no output.

Scores (one registry, ``IMPORTANCE_METHODS``; shapes [num_layers, num_heads] and [num_layers, num_neurons]):

- ``fisher``: the diagonal of the empirical Fisher information of head and neuron masks,
  ``I_u = sum_x (dL(x) / dm_u)^2`` at m = 1 (Kwon et al. 2022, "A Fast Post-Training Pruning Framework
  for Transformers", eq. 7 and its diagonal approximation), with one gradient per example; mask m_h
  multiplies head h's attention context, m_i neuron i's activation. Michel et al. 2019 ("Are Sixteen
  Heads Really Better than One?", eq. 2) use the mean of ``|dL(x) / dm_h|`` instead; the order is
  usually close. Needs a task model (classification, regression, multiple choice, multi-label or token
  classification) and labels.
- ``magnitude``: data-free weight norms. Head h: ``sqrt(||W_q[h]||^2 + ||W_k[h]||^2 + ||W_v[h]||^2 +
  ||W_o[:, h]||^2)`` (Frobenius norms of the head's rows of the query/key/value projections and its
  columns of the attention output projection); neuron i: ``sqrt(||W_in[i, :]||^2 + ||W_out[:, i]||^2)``.
  Cheap, but blind to the data (and the softmax makes query/key scale only loosely related to use).

Head pruning (Michel et al. 2019) and retraining-free pruning (Kwon et al. 2022) can reuse
``score_importance``; ``InPlaceMask.set_scales`` is the mask mechanism both rely on.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from transformers import PreTrainedModel

from syne_prune.errors import SynePruneError
from syne_prune.masks import SubnetMask
from syne_prune.models import UnitAxis, get_family, head_of, select_units
from syne_prune.surgery import InPlaceMask, check_mask_fits

# Config attribute (saved in config.json) naming the method a model was ordered by: an ordered model,
# e.g. a super-network checkpoint or the model of a resumed run, is not ordered a second time.
ORDERED_ATTRIBUTE = "syne_prune_importance"

Batch = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class ImportanceScores:
    """Per-layer scores: ``heads`` [num_layers, num_heads], ``neurons`` [num_layers, num_neurons] (float32,
    on the CPU; larger = more important). ``num_examples``: how many examples they were computed on."""

    method: str
    heads: torch.Tensor
    neurons: torch.Tensor
    num_examples: int = 0

    def orders(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per layer, unit indices by descending score (ties keep index order): [L, H] and [L, I] int64."""
        return (torch.argsort(self.heads, dim=1, descending=True, stable=True),
                torch.argsort(self.neurons, dim=1, descending=True, stable=True))


def mask_gradients(model: PreTrainedModel, batches: Iterable[Batch],
                   mask: SubnetMask | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Per-example gradients of the task loss w.r.t. head and neuron masks, one batch at a time.

    Yields ``(heads [L, N, H], neurons [L, N, I])`` float32 on the model's device for each batch of N
    examples: ``dL(x) / dm_u`` at m = ``mask`` (1 for kept units, 0 for removed ones; all ones when
    ``mask`` is None). Every row of a batch gets its own mask variables (``InPlaceMask.set_scales``), so one
    backward pass gives each example's own gradient: the model's mean loss is multiplied by the batch size
    to get the sum of per-example losses (a token classifier's: each example's own mean over its labelled tokens,
    see ``_per_example_weights``), and for multiple choice the gradients of an example's choice rows are added.
    The model runs in eval mode (no dropout); parameter gradients are neither computed nor left.
    Raises SynePruneError for a base model (no loss) or batches without labels. ``fisher_scores`` sums the
    squares; retraining-free pruning (``baselines/rfp.py``) also needs the products within a layer.
    """
    if head_of(model) is None:
        raise SynePruneError(f"fisher importance needs a task model with a loss, not {type(model).__name__}; "
                             f"use --importance magnitude for a base model")
    arch = get_family(model.config)
    shape = arch.shape(model.config)
    device = next(model.parameters()).device
    was_training = model.training
    requires_grad = [p.requires_grad for p in model.parameters()]
    model.eval().requires_grad_(False)
    masker = InPlaceMask(model)
    if mask is None:
        mask = SubnetMask.full(shape.num_layers, shape.num_heads, shape.num_neurons)
    check_mask_fits(model, mask)
    try:
        for batch in batches:
            if "labels" not in batch:
                raise SynePruneError("fisher importance needs batches with labels (the task loss); pass labelled examples")
            batch = {k: v.to(device) for k, v in batch.items()}
            num_examples, ids = batch["labels"].shape[0], batch["input_ids"]
            rows = ids.numel() // ids.shape[-1]  # multiple choice: examples x choices
            head_mask = mask.heads.float().to(device)[:, None, :].repeat(1, rows, 1).requires_grad_(True)
            neuron_mask = mask.neurons.float().to(device)[:, None, :].repeat(1, rows, 1).requires_grad_(True)
            masker.set_scales(head_mask, neuron_mask)
            head_grad, neuron_grad = torch.autograd.grad(model(**batch).loss, (head_mask, neuron_mask))
            weights = _per_example_weights(batch["labels"], ids).to(device)[None, :, None]
            yield tuple(grad.reshape(shape.num_layers, num_examples, rows // num_examples, -1).sum(2) * weights
                        for grad in (head_grad, neuron_grad))
    finally:
        masker.remove()
        for parameter, flag in zip(model.parameters(), requires_grad):
            parameter.requires_grad_(flag)
        model.train(was_training)


def _per_example_weights(labels: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """What turns the gradient of a batch's mean loss into each example's own: [N] float32.

    A model's loss averages over the batch's N examples, so each example's gradient is its own times 1/N: weight N.
    A token classifier's loss averages over the batch's T labelled tokens (label -100: ignored), so example x,
    with T_x labelled tokens and its own loss the mean over them, gets T / T_x (0 for an example with none)."""
    if labels.is_floating_point() or labels.shape != input_ids.shape:  # one label (or one per class) per example
        return torch.full((labels.shape[0],), float(labels.shape[0]))
    counts = (labels != -100).sum(1).float()
    return torch.where(counts > 0, counts.sum() / counts.clamp(min=1), torch.zeros_like(counts))


def fisher_scores(model: PreTrainedModel, batches: Iterable[Batch], mask: SubnetMask | None = None) -> ImportanceScores:
    """Empirical Fisher importance (Kwon et al. 2022): ``I_u = sum over examples x of (dL(x) / dm_u)^2``.

    ``batches``: dicts of model inputs with ``labels`` (multiple choice: inputs [batch, choices, seq]);
    ``mask``: the point m at which the gradients are taken (default all ones; see ``mask_gradients``, which
    gives the per-example gradients). Raises SynePruneError for a base model (no loss) or batches without labels.
    """
    shape = get_family(model.config).shape(model.config)
    heads = torch.zeros(shape.num_layers, shape.num_heads, dtype=torch.float64)
    neurons = torch.zeros(shape.num_layers, shape.num_neurons, dtype=torch.float64)
    count = 0
    for head_grad, neuron_grad in mask_gradients(model, batches, mask):
        heads += head_grad.double().pow(2).sum(1).cpu()
        neurons += neuron_grad.double().pow(2).sum(1).cpu()
        count += head_grad.shape[1]
    if count == 0:
        raise SynePruneError("fisher importance got no examples; give at least one labelled batch")
    return ImportanceScores("fisher", heads.float(), neurons.float(), count)


@torch.no_grad()
def magnitude_scores(model: PreTrainedModel, batches: Iterable[Batch] | None = None) -> ImportanceScores:
    """Weight-norm importance (no data; ``batches`` is ignored). Head h of a layer:
    ``sqrt(||W_q[h]||_F^2 + ||W_k[h]||_F^2 + ||W_v[h]||_F^2 + ||W_o[:, h]||_F^2)`` over the head's
    ``head_dim`` rows of the query/key/value weights and columns of the attention output weight; neuron i:
    ``sqrt(||W_in[i, :]||^2 + ||W_out[:, i]||^2)``. Biases are left out (they do not scale with use)."""
    arch = get_family(model.config)
    shape = arch.shape(model.config)
    heads, neurons = [], []
    for layer in arch.layers(model):
        per_unit = _squared_norms(layer, arch.head_axes())  # [H * head_dim]
        heads.append(per_unit.view(shape.num_heads, shape.head_dim).sum(1).sqrt().cpu())
        neurons.append(_squared_norms(layer, arch.neuron_axes()).sqrt().cpu())
    return ImportanceScores("magnitude", torch.stack(heads), torch.stack(neurons), 0)


def _squared_norms(layer: torch.nn.Module, axes: tuple[UnitAxis, ...]) -> torch.Tensor:
    """Per unit: the sum of squares of its slices of the weights in ``axes`` (biases left out)."""
    total = 0
    for axis in axes:
        if axis.name.endswith(".weight"):
            try:
                weight = layer.get_parameter(axis.name)
            except AttributeError:  # a projection this layer lacks (e.g. DeBERTa's pos_key_proj with share_att_key)
                continue
            squares = weight.float().pow(2).sum(1 - axis.axis)
            total = total + squares.view(axis.blocks, -1).sum(0)
    return total


IMPORTANCE_METHODS: dict[str, Callable[..., ImportanceScores]] = {
    "fisher": fisher_scores,
    "magnitude": magnitude_scores,
}


def get_importance_method(name: str) -> Callable[..., ImportanceScores]:
    if name not in IMPORTANCE_METHODS:
        raise SynePruneError(f"unknown importance method '{name}'; choose one of {', '.join(IMPORTANCE_METHODS)}")
    return IMPORTANCE_METHODS[name]


def score_importance(model: PreTrainedModel, batches: Iterable[Batch], method: str = "fisher") -> ImportanceScores:
    """Scores of every head and neuron of ``model`` by ``method`` (a name in ``IMPORTANCE_METHODS``).

    ``batches``: model inputs with ``labels`` (a list, not a one-shot iterator, if you reuse it).
    Returns ImportanceScores (heads [L, H], neurons [L, I]); raises SynePruneError for an unknown method,
    an unsupported architecture, or (fisher) a model or batches without a loss."""
    return get_importance_method(method)(model, batches)


@torch.no_grad()
def permute_units(model: PreTrainedModel, head_order: torch.Tensor, neuron_order: torch.Tensor) -> None:
    """Rewire ``model`` in place: new head j of layer l is old head ``head_order[l, j]``, likewise neurons.

    Moves a head's ``head_dim`` rows (and biases) of the query/key/value projections and its columns of
    the attention output projection together; a neuron's row (and bias) of the FFN input and column of
    the FFN output. Function-preserving up to float rounding of the reordered sums.
    ``head_order`` [L, H], ``neuron_order`` [L, I]: a permutation of 0..H-1 (0..I-1) in every row."""
    arch = get_family(model.config)
    shape = arch.shape(model.config)
    _check_orders(head_order, shape.num_layers, shape.num_heads, "head")
    _check_orders(neuron_order, shape.num_layers, shape.num_neurons, "neuron")
    offsets = torch.arange(shape.head_dim)
    for layer, heads, neurons in zip(arch.layers(model), head_order, neuron_order):
        head_rows = (heads[:, None] * shape.head_dim + offsets[None, :]).flatten()
        _take(layer, arch.head_axes(), head_rows)
        _take(layer, arch.neuron_axes(), neurons)


def _take(layer: torch.nn.Module, axes: tuple[UnitAxis, ...], index: torch.Tensor) -> None:
    """Reorder the units of every parameter in ``axes`` (those the layer has: a Linear may have no bias)."""
    for axis in axes:
        try:
            parameter = layer.get_parameter(axis.name)
        except AttributeError:
            continue
        parameter.copy_(select_units(parameter, axis, index))


def _check_orders(order: torch.Tensor, num_layers: int, width: int, unit: str) -> None:
    expected = torch.arange(width)
    if tuple(order.shape) != (num_layers, width) or not all(torch.equal(row.sort().values.cpu(), expected) for row in order):
        raise SynePruneError(f"{unit} order of shape {tuple(order.shape)} is not a permutation of {width} {unit}s in each of "
                             f"{num_layers} layers; compute the scores on this model")


def permute_by_importance(model: PreTrainedModel, scores: ImportanceScores) -> tuple[torch.Tensor, torch.Tensor]:
    """Permute every layer's heads and neurons of ``model`` in place into descending score order.

    Returns (head_order [L, H], neuron_order [L, I]): position j of layer l now holds old unit order[l, j].
    Raises SynePruneError when the scores' shape does not fit the model."""
    head_order, neuron_order = scores.orders()
    permute_units(model, head_order, neuron_order)
    return head_order, neuron_order


def ordered_by(model: PreTrainedModel) -> str | None:
    """The method ``model`` was ordered by (recorded in its config), or None."""
    return getattr(model.config, ORDERED_ATTRIBUTE, None)


def order_by_importance(model: PreTrainedModel, batches: Iterable[Batch], method: str = "fisher",
                        force: bool = False) -> dict[str, Any]:
    """Score (``score_importance``) and permute (``permute_by_importance``) ``model`` in place.

    Records the method in ``model.config`` (saved with the model). A model already ordered is left
    alone unless ``force``: reordering a trained super-network would scramble the sub-networks it was
    trained with. Returns a JSON-able record: ``method``, ``num_examples``, ``head_scores`` (``[L][H]``) and
    ``neuron_scores`` (``[L][I]``) in the new order (non-increasing along each layer), ``head_order`` and
    ``neuron_order`` (new position -> old index); or ``{"method", "already_ordered_by"}`` when skipped.
    """
    previous = ordered_by(model)
    if previous and not force:
        return {"method": method, "already_ordered_by": previous}
    scores = score_importance(model, batches, method)
    head_order, neuron_order = permute_by_importance(model, scores)
    setattr(model.config, ORDERED_ATTRIBUTE, method)
    return {
        "method": method,
        "num_examples": scores.num_examples,
        "head_scores": _rounded(scores.heads.gather(1, head_order)),
        "neuron_scores": _rounded(scores.neurons.gather(1, neuron_order)),
        "head_order": head_order.tolist(),
        "neuron_order": neuron_order.tolist(),
    }


def _rounded(values: torch.Tensor) -> list[list[float]]:
    """Six significant digits: enough to read the ranking, a third of the JSON of full floats."""
    return [[float(f"{v:.6g}") for v in row] for row in values.tolist()]
