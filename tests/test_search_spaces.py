from __future__ import annotations

import shlex

import numpy as np
import pytest
import torch
from conftest import HEADS, LAYERS, NEURONS, SPACES
from syne_tune.config_space import Domain

from syne_prune import EncoderShape, SubnetMask, SynePruneError, get_search_space
from syne_prune.search_spaces import LargeSearchSpace

SHAPE = EncoderShape(num_layers=LAYERS, num_heads=HEADS, num_neurons=NEURONS, hidden_size=32)
BERT_BASE = EncoderShape(num_layers=12, num_heads=12, num_neurons=3072, hidden_size=768)


def test_hyperparameter_names_and_ranges_follow_the_paper():
    small = get_search_space("small", SHAPE).config_space
    assert {k: (d.lower, d.upper) for k, d in small.items()} == {
        "num_layers": (0, LAYERS), "num_heads": (1, HEADS), "num_units": (1, NEURONS)
    }
    medium = get_search_space("medium", SHAPE).config_space
    assert {k: (d.lower, d.upper) for k, d in medium.items()} == {
        "num_heads_0": (0, HEADS), "num_units_0": (0, NEURONS), "num_heads_1": (0, HEADS), "num_units_1": (0, NEURONS)
    }
    layer = get_search_space("layer", SHAPE).config_space
    assert {k: d.categories for k, d in layer.items()} == {"layer_0": [0, 1], "layer_1": [0, 1]}


def test_every_space_is_a_syne_tune_config_space():
    for name in SPACES:
        assert all(isinstance(d, Domain) for d in get_search_space(name, SHAPE).config_space.values())


@pytest.mark.parametrize("name", SPACES)
def test_largest_smallest_midpoint_and_samples_map_to_valid_masks(name):
    space = get_search_space(name, SHAPE)
    largest, smallest = space.to_mask(space.largest()), space.to_mask(space.smallest())
    assert largest.is_full()
    if name == "small":  # num_layers = 0 keeps nothing; heads/units have a lower bound of 1
        assert smallest.kept_layers == []
    else:
        assert not smallest.heads.any() and not smallest.neurons.any()
    mid = space.to_mask(space.midpoint())
    assert 0 < int(mid.heads.sum()) < largest.heads.numel()
    assert space.initial_points() == [space.largest(), space.smallest(), space.midpoint()]
    rng = np.random.RandomState(0)
    for _ in range(20):
        config = space.sample(rng)
        assert space.validate(config) == config
        mask = space.to_mask(config)
        assert mask.heads.shape == (LAYERS, HEADS) and mask.neurons.shape == (LAYERS, NEURONS)


def test_small_keeps_first_layers_heads_and_units():
    mask = get_search_space("small", SHAPE).to_mask({"num_layers": 1, "num_heads": 3, "num_units": 7})
    assert mask.heads_per_layer == [3, 0] and mask.neurons_per_layer == [7, 0]
    assert mask.heads[0].tolist() == [True, True, True, False]
    assert mask.kept_layers == [0] and mask.is_prefix()


def test_medium_and_layer_mappings():
    medium = get_search_space("medium", SHAPE).to_mask({"num_heads_0": 0, "num_units_0": 5, "num_heads_1": 4, "num_units_1": 0})
    assert medium.heads_per_layer == [0, 4] and medium.neurons_per_layer == [5, 0] and medium.kept_layers == [0, 1]
    layer = get_search_space("layer", SHAPE).to_mask({"layer_0": 0, "layer_1": 1})
    assert layer.kept_layers == [1] and layer.heads_per_layer == [0, HEADS] and layer.neurons_per_layer == [0, NEURONS]


def test_large_encodes_any_mask_and_round_trips():
    space = get_search_space("large", SHAPE)
    assert isinstance(space, LargeSearchSpace)
    # 37 neurons -> two words of 32 and 5 bits; 4 heads -> one word of 4 bits
    assert space.config_space["unit_mask_0_0"].upper == 2**32 - 1
    assert space.config_space["unit_mask_0_1"].upper == 2**5 - 1
    assert space.config_space["head_mask_1_0"].upper == 2**4 - 1
    generator = torch.Generator().manual_seed(3)
    for _ in range(10):
        mask = SubnetMask(torch.rand(LAYERS, HEADS, generator=generator) < 0.5, torch.rand(LAYERS, NEURONS, generator=generator) < 0.5)
        assert space.to_mask(space.config_from_mask(mask)) == mask
    one = space.to_mask({**space.smallest(), "unit_mask_1_1": 0b10000, "head_mask_0_0": 0b0101})
    assert torch.nonzero(one.neurons).tolist() == [[1, 36]]
    assert torch.nonzero(one.heads).tolist() == [[0, 0], [0, 2]]


def test_large_values_survive_a_local_backend_command_line():
    space = get_search_space("large", BERT_BASE)
    config = space.sample(np.random.RandomState(0))
    # LocalBackend writes `--key value`; every value must be one shell word and cast back exactly.
    command = " ".join(f"--{k} {v}" for k, v in config.items())
    words = shlex.split(command)
    parsed = dict(zip(words[0::2], words[1::2]))
    assert len(parsed) == len(config) == 12 * (1 + 96)
    restored = {k.removeprefix("--"): v for k, v in parsed.items()}
    assert space.to_mask(restored) == space.to_mask(config)


@pytest.mark.parametrize("name", SPACES)
def test_missing_hyperparameter_is_named_with_its_range(name):
    space = get_search_space(name, SHAPE)
    config = space.largest()
    missing = next(iter(config))
    del config[missing]
    with pytest.raises(SynePruneError, match=f"lacks hyperparameter '{missing}'"):
        space.to_mask(config)


@pytest.mark.parametrize(
    "name, key, value, expected",
    [
        ("small", "num_heads", 0, r"'num_heads' must be an integer in \[1, 4\], got 0"),
        ("small", "num_layers", 3, r"'num_layers' must be an integer in \[0, 2\], got 3"),
        ("medium", "num_units_1", 38, r"'num_units_1' must be an integer in \[0, 37\], got 38"),
        ("medium", "num_heads_0", 2.5, r"'num_heads_0' must be an integer in \[0, 4\], got 2.5"),
        ("layer", "layer_0", 2, r"'layer_0' must be one of \{0, 1\}, got 2"),
        ("large", "unit_mask_0_1", 32, r"'unit_mask_0_1' must be an integer in \[0, 31\], got 32"),
        ("large", "head_mask_0_0", "x", r"'head_mask_0_0' must be an integer in \[0, 15\], got 'x'"),
    ],
)
def test_out_of_range_value_is_named_with_its_range(name, key, value, expected):
    space = get_search_space(name, SHAPE)
    with pytest.raises(SynePruneError, match=expected):
        space.to_mask({**space.largest(), key: value})


def test_values_from_command_lines_and_tables_are_accepted_and_extra_keys_ignored():
    space = get_search_space("small", SHAPE)
    mask = space.to_mask({"num_layers": "2", "num_heads": 3.0, "num_units": np.int64(5), "supernet": "/tmp/x"})
    assert mask.heads_per_layer == [3, 3] and mask.neurons_per_layer == [5, 5]


def test_unknown_search_space_lists_the_choices():
    with pytest.raises(SynePruneError, match="unknown search space 'huge'; choose one of small, medium, layer, large"):
        get_search_space("huge", SHAPE)
