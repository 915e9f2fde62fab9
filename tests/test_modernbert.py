"""ModernBERT through the pipeline: masking = extraction, exact sizes, export, importance order, layer kinds.

Tiny ModernBERTs built in code: 4 layers alternating global/local attention (``global_attn_every_n_layers`` 2)
with a 4-token local window on 11-token inputs, so a layer that changed its kind would change the outputs; a
"plain" variant (ModernBERT's defaults: no biases anywhere) and a "biased" one (attention, MLP, norm and
classifier biases on). Norm weights and biases are random so a skipped or doubled norm is visible.
"""
from __future__ import annotations

import copy
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import transformers
from conftest import SPACES, VOCAB, check_extraction, tiny_batch, wordpiece_vocabulary
from transformers import (
    ModernBertConfig,
    ModernBertForMultipleChoice,
    ModernBertForSequenceClassification,
    ModernBertModel,
)

from syne_prune import InPlaceMask, SubnetMask, extract_subnetwork, get_family, get_search_space, masked
from syne_prune.export import export_subnetwork
from syne_prune.importance import ImportanceScores, magnitude_scores, mask_gradients, permute_by_importance
from syne_prune.objectives import subnet_size
from syne_prune.surgery import pruned_config

TOLERANCE = 1e-5
HIDDEN, LAYERS, HEADS, NEURONS = 32, 4, 4, 37
HEAD_DIM = HIDDEN // HEADS
KINDS = ["full_attention", "sliding_attention", "full_attention", "sliding_attention"]
HEAD_KINDS = ("classifier", "regression", "multiple_choice", "base")
BIASES = {"plain": {}, "biased": {"attention_bias": True, "mlp_bias": True, "norm_bias": True, "classifier_bias": True}}


def modernbert(head: str = "classifier", variant: str = "plain", seed: int = 0, attn_implementation: str = "sdpa"):
    """A tiny random ModernBERT; head: 'classifier' (3 labels), 'regression', 'multiple_choice' or 'base'."""
    torch.manual_seed(seed)
    config = ModernBertConfig(
        vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
        intermediate_size=NEURONS, global_attn_every_n_layers=2, local_attention=4, max_position_embeddings=64,
        pad_token_id=0, bos_token_id=1, eos_token_id=2, cls_token_id=1, sep_token_id=2, initializer_range=0.2,
        num_labels=1 if head == "regression" else 3, attn_implementation=attn_implementation, **BIASES[variant])
    cls = {"base": ModernBertModel, "multiple_choice": ModernBertForMultipleChoice}.get(head, ModernBertForSequenceClassification)
    model = cls(config)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.LayerNorm, torch.nn.Linear)) and module.bias is not None:
                module.bias.normal_(0.0, 0.3)
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.normal_(1.0, 0.3)
    return model.eval()


def _batch(head: str, seed: int = 0) -> dict[str, torch.Tensor]:
    return tiny_batch(seed=seed, choices=3 if head == "multiple_choice" else 0)


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


CASES = [(head, "plain", "eager") for head in HEAD_KINDS] + [("classifier", "biased", "eager"), ("base", "biased", "sdpa")]


@pytest.mark.parametrize("head,variant,attention", CASES)
@pytest.mark.parametrize("space_name", SPACES)
def test_extracted_equals_masked_and_sizes_are_exact(space_name, head, variant, attention):
    """23 configurations (extremes, midpoint, 20 random) per space and case: outputs within 1e-5; parameters ==
    numel() of the extracted model (and of its layers); MACs per sequence x sequences == torch's FLOP counter / 2
    on the same forward pass (eager attention: its matmuls are counted; sdpa: outputs only)."""
    model = modernbert(head, variant, attn_implementation=attention)
    space, batch = _space(model, space_name), _batch(head)
    assert subnet_size(model).params == sum(p.numel() for p in model.parameters())
    with torch.inference_mode():
        full = _outputs(model, batch)
        for config in _configs(space):
            check_extraction(model, space.to_mask(config), batch, TOLERANCE, macs_batch=batch if attention == "eager" else None)
        assert torch.equal(_outputs(model, batch), full)


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
    batch = _batch(head)
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


AUTO = {"classifier": "AutoModelForSequenceClassification", "regression": "AutoModelForSequenceClassification",
        "multiple_choice": "AutoModelForMultipleChoice", "base": "AutoModel"}


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Every head x space, two configurations each (midpoint, one random), exported once; plain and biased
    variants alternate over the heads."""
    root = tmp_path_factory.mktemp("modernbert-exports")
    records = []
    for i, head in enumerate(HEAD_KINDS):
        variant = list(BIASES)[i % 2]
        model, batch = modernbert(head, variant), _batch(head)
        for space_name in SPACES:
            space = _space(model, space_name)
            for j, config in enumerate((space.midpoint(), space.sample(np.random.RandomState(7)))):
                mask = space.to_mask(config)
                with torch.inference_mode(), masked(model, mask):
                    want = _outputs(model, batch)
                out = export_subnetwork(model, mask, root / f"{head}-{variant}-{space_name}-{j}")
                records.append((str(out), head, batch, want, subnet_size(model, mask).params))
    torch.save(records, root / "expected.pt")
    return root, records


def test_export_reloads_to_the_masked_outputs(exports):
    _, records = exports
    kinds = set()
    for out, head, batch, want, params in records:
        model = getattr(transformers, AUTO[head]).from_pretrained(out).eval()
        kinds.add(model.config.model_type)
        assert sum(p.numel() for p in model.parameters()) == params
        with torch.inference_mode():
            assert (_outputs(model, batch) - want).abs().max() <= TOLERANCE, out
    assert kinds == {"modernbert", "syne_prune_modernbert"}  # both the stock and the pruned config are exercised


@pytest.mark.slow
def test_export_reloads_without_syne_prune_via_trust_remote_code(exports):
    root, _ = exports
    script = textwrap.dedent(f"""
        import sys
        sys.modules["syne_prune"] = None  # any import of syne_prune now raises ImportError
        import torch, transformers
        auto = {AUTO!r}
        worst = 0.0
        for out, head, batch, want, params in torch.load({str(root / "expected.pt")!r}, weights_only=False):
            model = getattr(transformers, auto[head]).from_pretrained(out, trust_remote_code=True).eval()
            assert sum(p.numel() for p in model.parameters()) == params, out
            with torch.inference_mode():
                got = model(**batch)
            got = got.logits if hasattr(got, "logits") else got.last_hidden_state
            worst = max(worst, (got - want).abs().max().item())
        print("WORST", worst)
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert float(result.stdout.split("WORST")[1]) <= TOLERANCE


def _modernbert_dir(path, texts: list[str]):
    """A tiny random ModernBERT base model plus a WordPiece tokenizer that returns no token_type_ids (as
    ModernBERT's own tokenizer), saved as from_pretrained expects."""
    from transformers import BertTokenizerFast

    path.mkdir(parents=True)
    (path / "vocab.txt").write_text("\n".join(wordpiece_vocabulary(texts)) + "\n")
    tokenizer = BertTokenizerFast(vocab=str(path / "vocab.txt"), model_input_names=["input_ids", "attention_mask"])
    model = modernbert("base")
    model.config.vocab_size = len(tokenizer)
    model.resize_token_embeddings(len(tokenizer))
    model.config.update({"pad_token_id": 0, "cls_token_id": 2, "bos_token_id": 2, "sep_token_id": 3, "eos_token_id": 3})
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_supernet_training_with_fisher_ordering_on_real_rte_rows(glue_dir, tmp_path):
    """train-supernet end to end (fisher importance ordering, sandwich strategy, medium space) on a tiny ModernBERT:
    the weights change, the checkpoint reloads as ModernBERT, and on it extraction still equals masking."""
    from safetensors.torch import load_file

    from syne_prune.data import load_task
    from syne_prune.supernet import TrainingConfig, load_supernet, train_supernet

    data = load_task("rte", glue_dir)
    source = _modernbert_dir(tmp_path / "model", [t for column in data.train.texts for t in column])
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
