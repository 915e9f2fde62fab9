from __future__ import annotations

import pytest
import torch

from syne_prune import SubnetMask


def test_counts_kept_layers_and_prefix():
    mask = SubnetMask.from_counts([2, 0, 0], [0, 5, 0], num_heads=4, num_neurons=8)
    assert mask.heads_per_layer == [2, 0, 0] and mask.neurons_per_layer == [0, 5, 0]
    assert mask.kept_layers == [0, 1]
    assert mask.is_prefix() and not mask.is_full()
    assert SubnetMask.full(3, 4, 8).is_full()


def test_arbitrary_mask_is_not_a_prefix_and_equality_is_by_value():
    heads = torch.tensor([[True, False, True, False]])
    neurons = torch.ones(1, 3, dtype=torch.bool)
    mask = SubnetMask(heads, neurons)
    assert not mask.is_prefix()
    assert mask == SubnetMask(heads.clone(), neurons.clone())
    assert hash(mask) == hash(SubnetMask(heads.clone(), neurons.clone()))
    assert mask != SubnetMask(~heads, neurons)


def test_rejects_wrong_types_and_shapes():
    with pytest.raises(TypeError):
        SubnetMask(torch.ones(2, 4), torch.ones(2, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match="same L"):
        SubnetMask(torch.ones(2, 4, dtype=torch.bool), torch.ones(3, 8, dtype=torch.bool))
