"""The invariant everything rests on: an extracted sub-network computes what the masked super-network computes."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import HEADS, LAYERS, NEURONS, SPACES, check_extraction, tiny_batch, tiny_model

from syne_prune import InPlaceMask, SubnetMask, SynePruneError, extract_subnetwork, get_family, get_search_space, masked
from syne_prune.surgery import pruned_config

TOLERANCE = 1e-5


def _configs(space, count=20, seed=0):
    rng = np.random.RandomState(seed)
    return [space.smallest(), space.largest(), space.midpoint()] + [space.sample(rng) for _ in range(count)]


def _space(model, name):
    return get_search_space(name, get_family(model.config).shape(model.config))


def _outputs(model, batch):
    out = model(**batch)
    return out.logits if hasattr(out, "logits") else out.last_hidden_state


@pytest.mark.parametrize("head", ["classifier", "regression", "multiple_choice", "base"])
@pytest.mark.parametrize("space_name", SPACES)
def test_extracted_equals_masked(arch, space_name, head):
    model = tiny_model(arch, head)
    space = _space(model, space_name)
    batch = tiny_batch(choices=4 if head == "multiple_choice" else 0)
    with torch.inference_mode():
        full = _outputs(model, batch)
        for config in _configs(space):
            check_extraction(model, space.to_mask(config), batch, TOLERANCE)
        assert torch.equal(_outputs(model, batch), full)


def test_partial_head_mask_changes_the_output(arch):
    model = tiny_model(arch, "base")
    batch = tiny_batch()
    with torch.inference_mode():
        full = model(**batch).last_hidden_state
        for head in range(HEADS):
            heads = torch.ones(LAYERS, HEADS, dtype=torch.bool)
            heads[0, head] = False
            mask = SubnetMask(heads, torch.ones(LAYERS, NEURONS, dtype=torch.bool))
            with masked(model, mask):
                assert (model(**batch).last_hidden_state - full).abs().max() > 1e-3
            assert (extract_subnetwork(model, mask)(**batch).last_hidden_state - full).abs().max() > 1e-3


def test_removed_layers_are_identities(arch):
    """Masking out every block gives what a model with those layers deleted gives."""
    model = tiny_model(arch, "classifier")
    batch = tiny_batch()
    arch_ = get_family(model.config)
    mask = SubnetMask.from_counts([0, HEADS], [0, NEURONS], HEADS, NEURONS)
    with torch.inference_mode():
        with masked(model, mask):
            want = model(**batch).logits
        layers = arch_.layers(model)
        first = layers[0]
        del layers[0]
        try:
            deleted = model(**batch).logits
        finally:
            layers.insert(0, first)
    assert (want - deleted).abs().max() <= TOLERANCE


def test_removed_block_passes_the_residual_through():
    """A layer with no heads equals its FFN sub-block applied to the input: attention output, bias and LayerNorm skipped."""
    model = tiny_model("bert", "base")
    layer = get_family(model.config).layers(model)[0]
    hidden = torch.randn(2, 5, 32)
    mask = SubnetMask.from_counts([0, HEADS], [NEURONS, NEURONS], HEADS, NEURONS)
    with torch.inference_mode(), masked(model, mask):
        got = layer(hidden)[0] if isinstance(layer(hidden), tuple) else layer(hidden)
    with torch.inference_mode():
        want = layer.output(layer.intermediate(hidden), hidden)
    assert (got - want).abs().max() <= TOLERANCE


def test_in_place_masking_copies_no_weights_and_keeps_gradients(arch):
    model = tiny_model(arch, "classifier").train()
    before = {name: p.data_ptr() for name, p in model.named_parameters()}
    space = _space(model, "medium")
    masker = InPlaceMask(model)
    masker.set(space.to_mask(space.midpoint()))
    loss = model(**tiny_batch(), labels=torch.tensor([0, 1, 2])).loss
    loss.backward()
    assert {name: p.data_ptr() for name, p in model.named_parameters()} == before
    arch_ = get_family(model.config)
    parts = arch_.parts(arch_.layers(model)[0])
    kept_heads = space.to_mask(space.midpoint()).heads_per_layer[0]
    head_dim = 32 // HEADS
    grad = parts.attention_output.weight.grad
    assert grad[:, : kept_heads * head_dim].abs().sum() > 0
    assert grad[:, kept_heads * head_dim :].abs().sum() == 0  # masked heads get no gradient
    masker.remove()


def test_prefix_extraction_is_views_of_the_supernetwork(arch):
    model = tiny_model(arch, "classifier")
    space = _space(model, "medium")
    sub = extract_subnetwork(model, space.to_mask(space.midpoint()))
    storages = {p.untyped_storage().data_ptr() for p in model.parameters()}
    assert all(p.untyped_storage().data_ptr() in storages for p in sub.parameters())
    copy = extract_subnetwork(model, space.to_mask(space.midpoint()), share_weights=False)
    assert not any(p.untyped_storage().data_ptr() in storages for p in copy.parameters())


def test_arbitrary_mask_copies_only_the_kept_part():
    model = tiny_model("bert", "classifier")
    heads = torch.tensor([[True, False, True, False], [False, True, True, True]])
    mask = SubnetMask(heads, torch.rand(LAYERS, NEURONS, generator=torch.Generator().manual_seed(0)) < 0.5)
    sub = extract_subnetwork(model, mask)
    query = sub.bert.encoder.layer[0].attention.self.query
    full_query = model.bert.encoder.layer[0].attention.self.query
    assert query.weight.shape == (2 * 8, 32)
    assert torch.equal(query.weight, torch.cat([full_query.weight[0:8], full_query.weight[16:24]]))
    # embeddings are shared, not copied
    assert sub.bert.embeddings.word_embeddings.weight.data_ptr() == model.bert.embeddings.word_embeddings.weight.data_ptr()


def test_stock_config_only_for_uniform_full_head_subnetworks():
    model = tiny_model("bert", "classifier")
    uniform = SubnetMask.from_counts([HEADS, 0], [20, 0], HEADS, NEURONS)  # layer 1 dropped, FFN 20 everywhere
    config = pruned_config(model, uniform)
    assert config.model_type == "bert" and config.num_hidden_layers == 1 and config.intermediate_size == 20
    fewer_heads = SubnetMask.from_counts([2, 2], [NEURONS, NEURONS], HEADS, NEURONS)
    assert pruned_config(model, fewer_heads).model_type == "syne_prune_bert"
    removed_block = SubnetMask.from_counts([HEADS, HEADS], [NEURONS, 0], HEADS, NEURONS)
    config = pruned_config(model, removed_block)
    assert config.model_type == "syne_prune_bert" and config.intermediate_size_per_layer == [NEURONS, 0]


def test_mask_of_another_shape_is_refused():
    model = tiny_model("bert", "classifier")
    with pytest.raises(SynePruneError, match="does not fit a model"):
        extract_subnetwork(model, SubnetMask.full(3, HEADS, NEURONS))


def test_unsupported_architecture_names_the_supported_ones():
    from transformers import GPT2Config, GPT2Model

    model = GPT2Model(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50))
    supported = "bert, roberta, distilbert, xlm-roberta, electra"
    with pytest.raises(SynePruneError, match=f"unsupported architecture 'gpt2'; syne-prune supports {supported}"):
        InPlaceMask(model)


def test_other_task_heads_are_refused():
    from conftest import tiny_config
    from transformers import BertForMaskedLM

    model = BertForMaskedLM(tiny_config("bert"))
    with pytest.raises(SynePruneError, match="BertForMaskedLM is not supported"):
        extract_subnetwork(model, SubnetMask.full(LAYERS, HEADS, NEURONS))


def test_in_place_removed_layers_are_not_computed(arch):
    """A layer with both blocks removed is skipped, not computed and discarded (cheaper training steps)."""
    model = tiny_model(arch, "classifier")
    arch_ = get_family(model.config)
    calls = []
    for index, layer in enumerate(arch_.layers(model)):
        arch_.parts(layer).query.register_forward_hook(lambda *a, index=index: calls.append(index))
    masker = InPlaceMask(model)
    masker.set(SubnetMask.from_counts([0, 2], [0, 5], HEADS, NEURONS))
    with torch.inference_mode():
        model(**tiny_batch())
    assert calls == [1]
    masker.set(None)
    with torch.inference_mode():
        model(**tiny_batch())
    assert calls == [1, 0, 1]
    masker.remove()
