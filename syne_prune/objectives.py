"""Objectives of a sub-network: exact parameter count, MACs per sequence, measured latency.

Each family gives its own per-block formulas (``Family.attention_size``, ``Family.ffn_size``,
``Family.fixed_macs``); BERT's, the default, are: for hidden size h, head size d, k kept heads, u kept
FFN neurons and n tokens, one layer holds

    attention:  3(h·kd + kd) + (kd·h + h) + 2h   parameters   (0 when k = 0: the block is removed)
    FFN:        (h·u + u) + (u·h + h) + 2h       parameters   (0 when u = 0)

and costs, in multiply-accumulates (MACs) per sequence,

    attention:  3·n·h·kd  (Q, K, V)  +  2·n²·kd  (QKᵀ and attention·V)  +  n·kd·h  (output projection)
    FFN:        2·n·h·u

DeBERTa's disentangled attention (``deberta_v2.DebertaV2Family.attention_size``; He et al. 2021, eq. 4)
adds, with R relative embeddings, P projections of them per layer of which P_w have own weights
(``pos_key_proj``/``pos_query_proj``; with ``share_att_key`` the query and key projections are reused) and
S position scores (c2p, p2c), the ``EncoderShape`` fields:

    attention:  + P_w(h·kd + kd)  parameters;   + P·R·h·kd  (projections)  +  S·n·R·kd  (scores)  MACs

The relative embeddings are projected once per forward pass, whatever the batch size: these are the MACs
of one sequence (batch size 1).

The rest of the model (embeddings, pooler, task head) is not pruned: its parameters are counted
from the model itself, and its MACs are those of its linear layers applied to one token (pooler and
classifier read the first token), except the family's per-token Linears outside the layers (ELECTRA's
embedding projection, DeBERTa's ``embed_proj``), applied to all n tokens. Embedding lookups, biases, softmax, LayerNorm and activations are
not MACs. ``tests/test_objectives.py`` checks both formulas against ``numel()`` of extracted models
and against torch's FLOP counter.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

from syne_prune.masks import SubnetMask
from syne_prune.models import FAMILIES, EncoderShape, Family, get_family, head_of
from syne_prune.precision import autocast, resolve_precision
from syne_prune.surgery import check_mask_fits


@dataclass(frozen=True)
class SubnetSize:
    """Size of one sub-network: all parameters, the prunable encoder part, MACs per sequence."""

    params: int
    encoder_params: int
    macs: int
    seq_len: int


def subnet_size(model: PreTrainedModel, mask: SubnetMask | None = None, seq_len: int = 128) -> SubnetSize:
    """Exact size of the sub-network ``mask`` of ``model`` (the full model when mask is None): parameters and
    MACs per sequence of ``seq_len`` tokens. Raises SynePruneError for an unsupported model or a mask of
    another shape."""
    arch = get_family(model.config)
    shape = arch.shape(model.config)
    if mask is None:
        mask = SubnetMask.full(shape.num_layers, shape.num_heads, shape.num_neurons)
    check_mask_fits(model, mask)
    encoder_params, macs = encoder_size(shape, mask, seq_len, arch, model.config)
    layer_params = {id(p) for p in arch.layers(model).parameters()}
    fixed_params = sum(p.numel() for p in model.parameters() if id(p) not in layer_params)
    return SubnetSize(params=fixed_params + encoder_params, encoder_params=encoder_params,
                      macs=macs + arch.fixed_macs(model, seq_len), seq_len=seq_len)


def encoder_size(shape: EncoderShape, mask: SubnetMask, seq_len: int = 128, family: Family = FAMILIES["bert"],
                 config: PretrainedConfig | None = None) -> tuple[int, int]:
    """(parameters, MACs per sequence of ``seq_len`` tokens) of the prunable encoder layers that ``mask``
    keeps, by ``family``'s formulas (``Family.layer_size``; default BERT's, in this module's docstring); needs
    only the shape, no weights (and the model ``config`` for a family whose formula reads it, e.g. ModernBERT's
    bias flags)."""
    encoder_params = macs = 0
    for index, (k, u) in enumerate(zip(mask.heads_per_layer, mask.neurons_per_layer)):
        params_macs = family.layer_size(shape, config, index, k, u, seq_len)
        encoder_params += params_macs[0]
        macs += params_macs[1]
    return encoder_params, macs


@torch.inference_mode()
def measure_latency_ms(
    model: nn.Module, batch_size: int = 1, seq_len: int = 128, repeats: int = 10, warmup: int = 2, vocab_size: int = 1000
) -> float:
    """Median wall time in ms of one forward pass on random token ids [batch_size, seq_len] (on the model's device, in
    the run's precision: ``precision.resolve_precision``, fp32 on the CPU unless chosen otherwise, so a search on a GPU
    measures the latency of the precision it trains and evaluates in)."""
    device = next(model.parameters()).device
    precision = resolve_precision(None, device)
    input_ids = torch.randint(5, vocab_size, (batch_size, seq_len), device=device)
    if head_of(model) == "AutoModelForMultipleChoice":
        input_ids = input_ids[:, None, :]  # one choice per example: the same encoder work as a classifier
    attention_mask = torch.ones_like(input_ids)
    model.eval()
    times = []
    for i in range(warmup + repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with autocast(precision, device):
            model(input_ids=input_ids, attention_mask=attention_mask)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)
