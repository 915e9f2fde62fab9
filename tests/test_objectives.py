from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import SPACES, tiny_batch, tiny_model
from helpers import TimedForward
from torch.utils.flop_counter import FlopCounterMode

from syne_prune import extract_subnetwork, get_family, get_search_space
from syne_prune.objectives import measure_latency_ms, subnet_size


def _masks(model, space_name, count=8):
    space = get_search_space(space_name, get_family(model.config).shape(model.config))
    rng = np.random.RandomState(1)
    return [space.to_mask(c) for c in [space.smallest(), space.largest(), space.midpoint()] + [space.sample(rng) for _ in range(count)]]


@pytest.mark.parametrize("head", ["classifier", "regression", "base"])
@pytest.mark.parametrize("space_name", SPACES)
def test_parameter_count_equals_numel_of_extracted_model(arch, space_name, head):
    model = tiny_model(arch, head)
    assert subnet_size(model).params == sum(p.numel() for p in model.parameters())
    for mask in _masks(model, space_name, count=20):
        size = subnet_size(model, mask)
        sub = extract_subnetwork(model, mask)
        assert size.params == sum(p.numel() for p in sub.parameters())
        layers = get_family(model.config).layers(sub)  # pruned classes keep the stock attribute paths
        assert size.encoder_params == sum(p.numel() for p in layers.parameters())


@pytest.mark.parametrize("space_name", SPACES)
def test_macs_equal_torch_flop_counter(arch, space_name):
    model = tiny_model(arch, "classifier", attn_implementation="eager")  # eager: attention matmuls are visible to the counter
    seq_len = 11
    for mask in _masks(model, space_name):
        sub = extract_subnetwork(model, mask)
        batch = tiny_batch(length=seq_len, batch=1)
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            sub(**batch)
        assert subnet_size(model, mask, seq_len=seq_len).macs == counter.get_total_flops() // 2


def test_macs_grow_quadratically_in_attention_and_linearly_in_ffn():
    model = tiny_model("bert", "base")
    a, b = subnet_size(model, seq_len=10).macs, subnet_size(model, seq_len=20).macs
    c = subnet_size(model, seq_len=40).macs
    assert (c - b) - (b - a) > 0  # convex in n: the n² attention term


def test_latency_is_the_median_of_the_timed_repeats_after_warmup(monkeypatch):
    model = tiny_model("bert", "classifier").train()
    # one warm-up call of 50 ms, then 4, 1 and 2 ms: the median of the repeats is 2 ms (with the warm-up it would be
    # 3, their mean 2.33, the last three calls' median 2, the first three's 4)
    clock = TimedForward(monkeypatch, model, [0.050, 0.004, 0.001, 0.002])
    assert measure_latency_ms(model, batch_size=2, seq_len=8, repeats=3, warmup=1, vocab_size=50) == pytest.approx(2.0, rel=1e-9)
    assert len(clock.calls) == 4  # warm-up + repeats, each one forward pass
    for call in clock.calls:  # random token ids below the vocabulary, no padding, eval mode, keyword inputs only
        assert call["args"] == () and call["training"] is False
        assert call["input_ids"].shape == (2, 8) and 5 <= int(call["input_ids"].min()) and int(call["input_ids"].max()) < 50
        assert torch.equal(call["attention_mask"], torch.ones(2, 8, dtype=call["input_ids"].dtype))
