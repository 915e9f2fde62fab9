"""ModernBERT's own behaviour beyond the family contract (``test_family_contract.py``): alternating local/global
attention kept per layer, the layer-0 attention norm, the fused Wqkv and gated Wi sliced and permuted together, its size
formula by hand, in-place masking gradients, importance scores, and super-network training.

Tiny ModernBERTs (``conftest.modernbert``): 4 layers alternating global/local attention with a 4-token local window on
11-token inputs; "plain" (no biases) and "biased" variants; random norm weights and biases.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from conftest import HEADS, HIDDEN, NEURONS, modernbert, modernbert_batch, save_modernbert_dir, tiny_batch
from conftest import MODERNBERT_KINDS as KINDS
from conftest import MODERNBERT_LAYERS as LAYERS

from syne_prune import InPlaceMask, SubnetMask, extract_subnetwork, get_family, get_search_space, masked
from syne_prune.importance import ImportanceScores, magnitude_scores, mask_gradients, permute_by_importance
from syne_prune.objectives import subnet_size
from syne_prune.surgery import pruned_config

TOLERANCE = 1e-5
HEAD_DIM = HIDDEN // HEADS
HEAD_KINDS = ("classifier", "regression", "multiple_choice", "base")


def _outputs(model, batch):
    out = model(**{k: v for k, v in batch.items() if k != "labels"})
    return out.logits if hasattr(out, "logits") else out.last_hidden_state


def _space(model, name):
    return get_search_space(name, get_family(model.config).shape(model.config))


def _configs(space, count=20, seed=0):
    rng = np.random.RandomState(seed)
    return [space.smallest(), space.largest(), space.midpoint()] + [space.sample(rng) for _ in range(count)]


def test_the_tiny_model_has_alternating_kinds_and_the_quirks():
    model = modernbert("classifier")
    layers = get_family(model.config).layers(model)
    assert [layer.attention_type for layer in layers] == KINDS
    assert isinstance(layers[0].attn_norm, torch.nn.Identity) and isinstance(layers[1].attn_norm, torch.nn.LayerNorm)
    assert layers[0].attn.Wqkv.weight.shape == (3 * HIDDEN, HIDDEN) and layers[0].mlp.Wi.weight.shape == (2 * NEURONS, HIDDEN)
    assert get_family(model.config).shape(model.config).num_neurons == NEURONS

def test_full_model_size_by_hand():
    """h=32, d=8, H=4, I=37, n=11, L=4, no biases. Attention: 32·96 + 32·32 (+32 norm, not in layer 0) = 4096;
    FFN: 32·74 + 37·32 + 32 = 3584; embeddings 101·32 + 32, final norm 32, head 32·32 + 32, classifier 32·3 + 3."""
    model = modernbert("classifier")
    size = subnet_size(model, seq_len=11)
    assert size.encoder_params == 4 * 4096 + 3 * 32 + 4 * 3584 == 30816
    assert size.params == 30816 + 101 * 32 + 32 + 32 + 32 * 32 + 32 + 32 * 3 + 3 == 35267
    layer_macs = 3 * 11 * 32 * 32 + 2 * 11 * 11 * 32 + 11 * 32 * 32 + 3 * 11 * 32 * 37
    assert size.macs == 4 * layer_macs + 32 * 32 + 32 * 3 == 4 * 91872 + 1120

def test_a_removed_layer_keeps_the_others_kinds():
    """Dropping layer 0 (global) leaves local, global, local; layer 1 keeps its attention norm; and the kinds
    matter here: the same weights with every layer global give other outputs."""
    model = modernbert("base")
    mask = SubnetMask.from_counts([0, HEADS, 2, HEADS], [0, NEURONS, NEURONS, 5], HEADS, NEURONS)
    sub = extract_subnetwork(model, mask)
    assert sub.config.layer_types == KINDS[1:]
    assert [layer.attention_type for layer in sub.layers] == KINDS[1:]
    assert [layer.attn.sliding_window for layer in sub.layers] == [3, None, 3]  # local_attention // 2 + 1
    assert sub.config.first_layer_attn_norm and isinstance(sub.layers[0].attn_norm, torch.nn.LayerNorm)
    batch = tiny_batch()
    with torch.inference_mode():
        with masked(model, mask):
            want = model(**batch).last_hidden_state
        assert (sub(**batch).last_hidden_state - want).abs().max() <= TOLERANCE
        all_global = copy.deepcopy(sub)
        all_global.config.layer_types = ["full_attention"] * 3
        for layer in all_global.layers:
            layer.attention_type = "full_attention"
        assert (all_global(**batch).last_hidden_state - want).abs().max() > 1e-3

def test_removed_layer_is_the_identity_and_a_removed_block_passes_the_residual():
    model = modernbert("classifier")
    batch = tiny_batch()
    layers = get_family(model.config).layers(model)
    with torch.inference_mode():
        with masked(model, SubnetMask.from_counts([HEADS, 0, HEADS, HEADS], [NEURONS, 0, NEURONS, NEURONS], HEADS, NEURONS)):
            want = model(**batch).logits
        second = layers[1]
        del layers[1]
        try:
            deleted = model(**batch).logits
        finally:
            layers.insert(1, second)
        assert (want - deleted).abs().max() <= TOLERANCE
        layer, hidden = layers[2], torch.randn(2, 5, HIDDEN)
        position = model.model.rotary_emb(hidden, torch.arange(5)[None], "full_attention")
        with masked(model, SubnetMask.from_counts([HEADS] * LAYERS, [NEURONS, NEURONS, 0, NEURONS], HEADS, NEURONS)):
            got = layer(hidden, position_embeddings=position)
        attention = hidden + layer.attn(layer.attn_norm(hidden), position_embeddings=position)[0]
        assert (got - attention).abs().max() <= TOLERANCE  # FFN block removed: nothing added after attention

def test_partial_head_and_neuron_masks_change_the_output():
    """Every head and every tenth neuron matters on its own (so the equality checks are not vacuous)."""
    model = modernbert("base")
    batch = tiny_batch()
    masker = InPlaceMask(model)
    with torch.inference_mode():
        full = model(**batch).last_hidden_state
        for layer in range(LAYERS):
            for head in range(HEADS):
                mask = SubnetMask.full(LAYERS, HEADS, NEURONS)
                mask.heads[layer, head] = False
                masker.set(mask)
                assert (model(**batch).last_hidden_state - full).abs().max() > 1e-4, (layer, head)
            for neuron in range(0, NEURONS, 10):
                mask = SubnetMask.full(LAYERS, HEADS, NEURONS)
                mask.neurons[layer, neuron] = False
                masker.set(mask)
                assert (model(**batch).last_hidden_state - full).abs().max() > 1e-5, (layer, neuron)
    masker.remove()

def test_extraction_slices_query_key_value_and_gate_rows_together():
    model = modernbert("classifier", "biased")
    heads = torch.tensor([[False, True, False, True]] + [[True] * HEADS] * 3)
    neurons = torch.ones(LAYERS, NEURONS, dtype=torch.bool)
    neurons[0, :30] = False
    sub = extract_subnetwork(model, SubnetMask(heads, neurons))
    source, target = model.model.layers[0], sub.model.layers[0]
    rows = torch.cat([torch.arange(b * HIDDEN + h * HEAD_DIM, b * HIDDEN + (h + 1) * HEAD_DIM) for b in range(3) for h in (1, 3)])
    assert torch.equal(target.attn.Wqkv.weight, source.attn.Wqkv.weight[rows])
    assert torch.equal(target.attn.Wqkv.bias, source.attn.Wqkv.bias[rows])
    assert torch.equal(target.attn.Wo.weight, source.attn.Wo.weight[:, torch.cat([torch.arange(8, 16), torch.arange(24, 32)])])
    assert torch.equal(target.mlp.Wi.weight, source.mlp.Wi.weight[list(range(30, 37)) + list(range(67, 74))])
    assert torch.equal(target.mlp.Wi.bias, source.mlp.Wi.bias[list(range(30, 37)) + list(range(67, 74))])
    assert torch.equal(target.mlp.Wo.weight, source.mlp.Wo.weight[:, 30:])
    assert sub.model.embeddings.tok_embeddings.weight.data_ptr() == model.model.embeddings.tok_embeddings.weight.data_ptr()

def test_stock_config_only_where_stock_modernbert_can_hold_the_subnetwork():
    model = modernbert("classifier")
    uniform = SubnetMask.from_counts([HEADS, HEADS, 0, HEADS], [20, 20, 0, 20], HEADS, NEURONS)
    config = pruned_config(model, uniform)
    assert config.model_type == "modernbert" and config.intermediate_size == 20
    assert config.layer_types == ["full_attention", "sliding_attention", "sliding_attention"]
    without_first = SubnetMask.from_counts([0, HEADS, HEADS, HEADS], [0, 20, 20, 20], HEADS, NEURONS)
    config = pruned_config(model, without_first)  # the new layer 0 needs its attention norm
    assert config.model_type == "syne_prune_modernbert" and config.first_layer_attn_norm
    fewer_heads = SubnetMask.from_counts([2] * LAYERS, [NEURONS] * LAYERS, HEADS, NEURONS)
    assert pruned_config(model, fewer_heads).num_heads_per_layer == [2] * LAYERS
    nothing = pruned_config(model, SubnetMask.from_counts([0] * LAYERS, [0] * LAYERS, HEADS, NEURONS))
    assert nothing.model_type == "syne_prune_modernbert" and nothing.num_hidden_layers == 0 and nothing.layer_types == []

def test_in_place_masking_copies_no_weights_and_masked_units_get_no_gradient():
    """Super-network training's mechanism: masked heads' Wo columns and masked neurons' Wi rows get zero gradient."""
    model = modernbert("classifier").train()
    before = {name: p.data_ptr() for name, p in model.named_parameters()}
    masker = InPlaceMask(model)
    masker.set(SubnetMask.from_counts([2] * LAYERS, [10] * LAYERS, HEADS, NEURONS))
    model(**tiny_batch(), labels=torch.tensor([0, 1, 2])).loss.backward()
    masker.remove()
    assert {name: p.data_ptr() for name, p in model.named_parameters()} == before
    layer = model.model.layers[1]
    assert layer.attn.Wo.weight.grad[:, : 2 * HEAD_DIM].abs().sum() > 0
    assert layer.attn.Wo.weight.grad[:, 2 * HEAD_DIM :].abs().sum() == 0
    grad = layer.mlp.Wi.weight.grad
    assert grad[list(range(10)) + list(range(37, 47))].abs().sum() > 0
    assert grad[list(range(10, 37)) + list(range(47, 74))].abs().sum() == 0

@pytest.mark.parametrize("head", HEAD_KINDS)
def test_importance_permutation_preserves_outputs_and_moves_qkv_and_gate_rows(head):
    model = modernbert(head, "biased")
    batch = modernbert_batch(head)
    original = copy.deepcopy(model)
    reverse = ImportanceScores("test", torch.arange(HEADS).float().repeat(LAYERS, 1), torch.arange(NEURONS).float().repeat(LAYERS, 1))
    with torch.inference_mode():
        before = _outputs(model, batch)
        permute_by_importance(model, reverse)
        assert (_outputs(model, batch) - before).abs().max() <= TOLERANCE
    old, new = get_family(model.config).layers(original)[2], get_family(model.config).layers(model)[2]
    for block in range(3):  # new head 0 = old head 3, in the query, key and value blocks of Wqkv
        start = block * HIDDEN
        assert torch.equal(new.attn.Wqkv.weight[start : start + HEAD_DIM], old.attn.Wqkv.weight[start + 3 * HEAD_DIM : start + 4 * HEAD_DIM])
        assert torch.equal(new.attn.Wqkv.bias[start : start + HEAD_DIM], old.attn.Wqkv.bias[start + 3 * HEAD_DIM : start + 4 * HEAD_DIM])
    assert torch.equal(new.attn.Wo.weight[:, :HEAD_DIM], old.attn.Wo.weight[:, 3 * HEAD_DIM :])
    assert torch.equal(new.mlp.Wi.weight[[0, NEURONS]], old.mlp.Wi.weight[[NEURONS - 1, 2 * NEURONS - 1]])
    assert torch.equal(new.mlp.Wo.weight[:, 0], old.mlp.Wo.weight[:, NEURONS - 1])

def test_magnitude_scores_by_hand():
    model = modernbert("classifier", "biased")
    scores = magnitude_scores(model)
    layer = model.model.layers[1]
    qkv, out = layer.attn.Wqkv.weight, layer.attn.Wo.weight
    h = 2
    rows = [qkv[b * HIDDEN + h * HEAD_DIM : b * HIDDEN + (h + 1) * HEAD_DIM] for b in range(3)]
    want = (sum(r.pow(2).sum() for r in rows) + out[:, h * HEAD_DIM : (h + 1) * HEAD_DIM].pow(2).sum()).sqrt()
    assert torch.allclose(scores.heads[1, h], want)
    wi, wo = layer.mlp.Wi.weight, layer.mlp.Wo.weight
    want = (wi[5].pow(2).sum() + wi[NEURONS + 5].pow(2).sum() + wo[:, 5].pow(2).sum()).sqrt()
    assert torch.allclose(scores.neurons[1, 5], want)

def test_fisher_mask_gradient_matches_finite_differences():
    """dL/dm_h at m = 1 (InPlaceMask.set_scales, as fisher importance uses it) equals (L(1 + e) - L(1 - e)) / 2e."""
    model = modernbert("classifier")
    batch = {**tiny_batch(batch=1), "labels": torch.tensor([2])}
    head_grad, neuron_grad = next(mask_gradients(model, [batch]))
    masker, eps, values = InPlaceMask(model), 1e-2, []
    for sign in (1, -1):
        heads, neurons = torch.ones(LAYERS, HEADS), torch.ones(LAYERS, NEURONS)
        heads[2, 1] += sign * eps
        masker.set_scales(heads, neurons)
        with torch.no_grad():
            values.append(model(**batch).loss.item())
    masker.remove()
    assert abs((values[0] - values[1]) / (2 * eps) - head_grad[2, 0, 1].item()) < 1e-3
    assert neuron_grad.abs().sum() > 0

def test_supernet_training_with_fisher_ordering_on_real_rte_rows(glue_dir, tmp_path):
    """train-supernet end to end (fisher importance ordering, sandwich strategy, medium space) on a tiny ModernBERT:
    the weights change, the checkpoint reloads as ModernBERT, and on it extraction still equals masking."""
    from safetensors.torch import load_file

    from syne_prune.data import load_task
    from syne_prune.supernet import TrainingConfig, load_supernet, train_supernet

    data = load_task("rte", glue_dir)
    source = save_modernbert_dir(tmp_path / "model", [t for column in data.train.texts for t in column])
    config = TrainingConfig(teacher=None, model=str(source), task="rte", output=str(tmp_path / "out"), data_dir=str(glue_dir),
                            search_space="medium", strategy="sandwich", epochs=1, batch_size=8, max_train_examples=24,
                            max_eval_examples=16, lr=1e-3, max_length=48, importance_examples=16)
    metadata = train_supernet(config, progress=False)
    assert metadata["model_type"] == "modernbert" and metadata["importance"]["method"] == "fisher"
    for name in ("largest", "smallest"):
        assert 0 <= metadata["metrics"][name]["validation"]["error"] <= 1
    before, after = load_file(source / "model.safetensors"), load_file(tmp_path / "out" / "model.safetensors")
    shared = [k for k in before if f"model.{k}" in after]
    assert len(shared) > 20 and sum(not torch.equal(before[k], after[f"model.{k}"]) for k in shared) > len(shared) // 2
    supernet = load_supernet(tmp_path / "out", task="rte", search_space="medium")
    model = supernet.model
    space = _space(model, "medium")
    batch = tiny_batch()
    for config in _configs(space, count=3, seed=3):
        mask = space.to_mask(config)
        with torch.inference_mode():
            with masked(model, mask):
                want = model(**batch).logits
            assert (extract_subnetwork(model, mask)(**batch).logits - want).abs().max() <= TOLERANCE
