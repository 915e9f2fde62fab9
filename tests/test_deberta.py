"""DeBERTa-v2/v3 through the pipeline: masking = extraction, exact sizes, export, importance, training.

Three tiny variants (2 layers, 4 heads, 37 FFN neurons, hidden size 32), each exercising a different path
of the disentangled attention:

- ``v3``: DeBERTa-v3's defaults: ``share_att_key`` (relative embeddings projected by the query and key
  projections), "p2c|c2p", 8 position buckets (R = 16), layer-normed relative embeddings, no absolute
  positions, no token types;
- ``v2``: own ``pos_key_proj`` / ``pos_query_proj``, "c2p" and "p2c", max_relative_positions 12 (R = 24),
  absolute positions, 2 token types, ``embedding_size`` 24 (an ``embed_proj`` on every token);
- ``head_size``: ``attention_head_size`` 12 (4 x 12 = 48 != hidden size 32; attention output projection
  48 -> 32), "c2p" only (only ``pos_key_proj``), 4 position buckets;
- ``conv``: DeBERTa-v2-xlarge's convolution after layer 0 (kernel 3), "p2c" only (only ``pos_query_proj``).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from conftest import SPACES, VOCAB, _randomize_norms_and_biases, check_extraction, tiny_batch, wordpiece_vocabulary
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from transformers import DebertaV2Config, DebertaV2ForMultipleChoice, DebertaV2ForSequenceClassification, DebertaV2Model

from syne_prune import InPlaceMask, SubnetMask, SynePruneError, extract_subnetwork, get_family, get_search_space, masked
from syne_prune.export import export_subnetwork
from syne_prune.importance import order_by_importance, permute_units
from syne_prune.models import check_model_settings, load_model_config, usable_positions
from syne_prune.objectives import subnet_size

TOLERANCE = 1e-5
HEADS = ("classifier", "regression", "multiple_choice", "base")
VARIANTS = {
    "v3": dict(share_att_key=True, pos_att_type="p2c|c2p", position_buckets=8, norm_rel_ebd="layer_norm",
               position_biased_input=False, type_vocab_size=0),
    "v2": dict(share_att_key=False, pos_att_type=["c2p", "p2c"], max_relative_positions=12, type_vocab_size=2, embedding_size=24),
    "head_size": dict(share_att_key=False, pos_att_type=["c2p"], position_buckets=4, attention_head_size=12),
    "conv": dict(share_att_key=False, pos_att_type=["p2c"], position_buckets=8, conv_kernel_size=3, conv_act="gelu",
                 norm_rel_ebd="layer_norm"),
}
# every task head for the three attention variants; the convolution only changes the encoder: the classifier
EXTRACTION_CASES = [(v, h) for v in ("v3", "v2", "head_size") for h in HEADS] + [("conv", "classifier")]


def deberta_config(variant: str, num_labels: int = 3, **overrides) -> DebertaV2Config:
    values = dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                  num_labels=num_labels, initializer_range=0.2, relative_attention=True, max_position_embeddings=64,
                  **VARIANTS[variant])
    return DebertaV2Config(**{**values, **overrides})


def deberta_model(variant: str, head: str = "classifier", seed: int = 0):
    """A random tiny DeBERTa (``head`` as in conftest.tiny_model). For ``head_size`` the attention output
    projections are rebuilt heads x attention_head_size wide (stock transformers builds them hidden_size wide)."""
    torch.manual_seed(seed)
    config = deberta_config(variant, num_labels=1 if head == "regression" else 3)
    cls = {"base": DebertaV2Model, "multiple_choice": DebertaV2ForMultipleChoice}.get(head, DebertaV2ForSequenceClassification)
    model = cls(config)
    for layer in get_family(config).layers(model):
        attention = layer.attention
        if attention.output.dense.in_features != attention.self.all_head_size:
            attention.output.dense = nn.Linear(attention.self.all_head_size, config.hidden_size)
    _randomize_norms_and_biases(model)
    return model.eval()


def _batch(variant: str, head: str, batch: int = 3):
    inputs = tiny_batch(batch=batch, choices=2 if head == "multiple_choice" else 0)
    if variant == "v2":  # token types matter in this variant
        inputs["token_type_ids"] = (torch.arange(inputs["input_ids"].shape[-1]) >= 6).long().expand_as(inputs["input_ids"])
    return inputs


def _outputs(model, batch):
    out = model(**batch)
    return out.logits if hasattr(out, "logits") else out.last_hidden_state


def _masks(model, space_name: str, count: int = 20):
    """The distinct masks of the smallest, largest and midpoint configurations and ``count`` seeded samples."""
    space = get_search_space(space_name, get_family(model.config).shape(model.config))
    rng = np.random.RandomState(3)
    configs = [space.smallest(), space.largest(), space.midpoint()] + [space.sample(rng) for _ in range(count)]
    return list(dict.fromkeys(space.to_mask(c) for c in configs))


def _flop_macs(sub, batch) -> int:
    single = {k: v[:1, :1] if v.dim() == 3 else v[:1] for k, v in batch.items()}  # one sequence (one choice)
    sub.requires_grad_(False)  # torch's module tracker fails on parameters passed as module inputs (relative embeddings)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        sub(**single)
    return counter.get_total_flops() // 2


@pytest.mark.parametrize("space_name", SPACES)
@pytest.mark.parametrize("variant, head", EXTRACTION_CASES)
def test_extraction_equals_masking_with_exact_sizes(variant, head, space_name):
    """For the distinct masks of 23 configurations (extremes, midpoint, 20 seeded): extracted outputs == masked
    outputs (1e-5), params == numel() of the extracted model (and of its layers), MACs == torch's FLOP counter / 2
    (one sequence of 11 tokens; for the classifier and base heads: regression and multiple choice share their layers)."""
    model, batch = deberta_model(variant, head), _batch(variant, head)
    seq_len = batch["input_ids"].shape[-1]
    masks = _masks(model, space_name)
    assert len(masks) == {"layer": 4}.get(space_name, 23) or space_name == "small"  # 2 layers: 4 layer masks
    full = subnet_size(model, seq_len=seq_len)
    assert full.params == sum(p.numel() for p in model.parameters())
    single = {k: v[:1, :1] if v.dim() == 3 else v[:1] for k, v in batch.items()}  # one sequence (one choice)
    for mask in masks:
        check_extraction(model, mask, batch, TOLERANCE, macs_batch=single if head in ("classifier", "base") else None)


def test_mac_formula_terms_by_hand():
    """v2, full model, n = 11: per layer 3nhd·H + 2n²d·H + n·dH·h + 2(R·h·dH) + 2(n·R·dH) + 2nhI with R = 24."""
    n, h, H, d, inner, r = 11, 32, 4, 8, 37, 24
    per_layer = 3 * n * h * H * d + 2 * n * n * H * d + n * H * d * h + 2 * r * h * H * d + 2 * n * r * H * d + 2 * n * h * inner
    fixed = n * 24 * 32 + 32 * 32 + 32 * 3  # embed_proj on every token, pooler and classifier on the first
    assert subnet_size(deberta_model("v2"), seq_len=n).macs == 2 * per_layer + fixed == 299_360


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_random_head_and_neuron_permutation_preserves_outputs(variant):
    """Permuting heads (with their relative-position projection rows) and neurons changes no output (1e-5),
    and the first-k sub-network of the permuted model equals the masked original with the permuted mask."""
    model, batch = deberta_model(variant), _batch(variant, "classifier")
    with torch.inference_mode():
        want = _outputs(model, batch)
    generator = torch.Generator().manual_seed(5)
    head_order = torch.stack([torch.randperm(4, generator=generator) for _ in range(2)])
    neuron_order = torch.stack([torch.randperm(37, generator=generator) for _ in range(2)])
    permute_units(model, head_order, neuron_order)
    mask = SubnetMask.from_counts([2, 3], [10, 20], 4, 37)
    original_mask = SubnetMask(torch.zeros(2, 4, dtype=torch.bool).scatter(1, head_order, mask.heads),
                               torch.zeros(2, 37, dtype=torch.bool).scatter(1, neuron_order, mask.neurons))
    original = deberta_model(variant)
    with torch.inference_mode():
        assert (_outputs(model, batch) - want).abs().max() <= TOLERANCE
        with masked(model, mask):
            got = _outputs(model, batch)
        with masked(original, original_mask):
            expected = _outputs(original, batch)
    assert (got - expected).abs().max() <= TOLERANCE


def test_fisher_ordering_sorts_scores_and_keeps_outputs():
    model, batch = deberta_model("v2"), _batch("v2", "classifier")
    with torch.inference_mode():
        want = _outputs(model, batch)
    record = order_by_importance(model, [{**batch, "labels": torch.tensor([0, 1, 2])}], method="fisher")
    with torch.inference_mode():
        assert (_outputs(model, batch) - want).abs().max() <= TOLERANCE
    for scores in record["head_scores"] + record["neuron_scores"]:
        assert scores == sorted(scores, reverse=True) and max(scores) > 0


AUTO = {"classifier": "AutoModelForSequenceClassification", "regression": "AutoModelForSequenceClassification",
        "multiple_choice": "AutoModelForMultipleChoice", "base": "AutoModel"}
EXPORT_MASKS = {  # (heads per layer, neurons per layer): non-uniform, uniform (stock config unless head_size), empty
    "pruned": ([0, 3], [20, 5]), "uniform": ([4, 4], [20, 20]), "empty": ([0, 0], [0, 0])}


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("deberta-exports")
    records = []
    for variant, head in EXTRACTION_CASES[:-1]:  # every head of the attention variants, conv with the classifier
        model, batch = deberta_model(variant, head), _batch(variant, head)
        for name, (heads, neurons) in EXPORT_MASKS.items():
            mask = SubnetMask.from_counts(heads, neurons, 4, 37)
            with torch.inference_mode(), masked(model, mask):
                want = _outputs(model, batch)
            out = export_subnetwork(model, mask, root / f"{variant}-{head}-{name}")
            records.append((str(out), variant, head, name, batch, want, subnet_size(model, mask).params))
    torch.save([(o, h, b, w) for o, _, h, _, b, w, _ in records], root / "expected.pt")
    return root, records


def test_export_reloads_to_the_masked_outputs(exports):
    _, records = exports
    for out, variant, head, name, batch, want, params in records:
        out_path = Path(out)
        config = json.loads((out_path / "config.json").read_text())
        stock = name == "uniform" and variant != "head_size"
        assert config["model_type"] == ("deberta-v2" if stock else "syne_prune_deberta_v2"), out
        assert (out_path / "modeling_syne_prune.py").exists() != stock and (out_path / "deberta_v2.py").exists() != stock
        model = getattr(transformers, AUTO[head]).from_pretrained(out).eval()
        assert sum(p.numel() for p in model.parameters()) == params
        with torch.inference_mode():
            assert (_outputs(model, batch) - want).abs().max() <= TOLERANCE, out


@pytest.mark.slow
def test_export_reloads_without_syne_prune(exports, tmp_path):
    root, records = exports
    script = textwrap.dedent(f"""
        import sys
        sys.modules["syne_prune"] = None  # any import of syne_prune now raises ImportError
        import torch, transformers
        auto = {AUTO!r}
        worst, count = 0.0, 0
        for out, head, batch, want in torch.load({str(root / "expected.pt")!r}):
            model = getattr(transformers, auto[head]).from_pretrained(out, trust_remote_code=True).eval()
            with torch.inference_mode():
                result = model(**batch)
            got = result.last_hidden_state if head == "base" else result.logits
            worst, count = max(worst, (got - want).abs().max().item()), count + 1
        print("WORST", worst, count)
        """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    worst, count = run.stdout.split("WORST")[1].split()
    assert float(worst) <= TOLERANCE and int(count) == len(records) == 12 * 3  # 3 attention variants x 4 heads x 3 masks


def test_shape_reads_head_size_and_relative_attention():
    shape = get_family(deberta_config("head_size")).shape(deberta_config("head_size"))
    assert (shape.head_dim, shape.relative_positions, shape.position_projections, shape.position_projection_weights,
            shape.position_scores) == (12, 8, 1, 1, 1)
    shape = get_family(deberta_config("v3")).shape(deberta_config("v3"))
    assert (shape.head_dim, shape.relative_positions, shape.position_projections, shape.position_projection_weights,
            shape.position_scores) == (8, 16, 2, 0, 2)


def test_conv_keeps_layer_zero_as_identity():
    """With the convolution after layer 0, a mask without layer 0 extracts [identity, layer 1]: 2 layers."""
    model = deberta_model("conv")
    mask = SubnetMask.from_counts([0, 2], [0, 9], 4, 37)
    sub = extract_subnetwork(model, mask)
    assert sub.config.num_hidden_layers == 2 and sub.config.num_heads_per_layer == [0, 2]
    assert sum(p.numel() for p in get_family(model.config).layers(sub)[0].parameters()) == 0


def test_unrunnable_settings_are_one_line_errors(tmp_path):
    stock = DebertaV2ForSequenceClassification(deberta_config("head_size"))  # output projection 32 wide, heads give 48
    with pytest.raises(SynePruneError, match="takes 32 inputs, not 4 heads x attention_head_size 12"):
        InPlaceMask(stock)
    stock.config.save_pretrained(tmp_path)
    with pytest.raises(SynePruneError, match="attention_head_size 12 x 4 heads = 48 but hidden_size 32"):
        load_model_config(str(tmp_path))


def test_v3_limits_no_positions_and_no_token_types():
    from syne_prune.data import get_task

    class PairTokenizer:  # marks the second text with token type 1, as BERT-style tokenizers do
        def __call__(self, a, b):
            return {"token_type_ids": [0, 0, 1]}

        def num_special_tokens_to_add(self, pair):
            return 3

        def __len__(self):
            return VOCAB

    v3, v2 = deberta_config("v3"), deberta_config("v2", type_vocab_size=1)
    assert usable_positions(v3) is None and usable_positions(v2) == 64
    check_model_settings(v3, get_task("rte"), PairTokenizer(), 1000)  # no error: no positions, token types ignored
    with pytest.raises(SynePruneError, match="type_vocab_size 1"):
        check_model_settings(v2, get_task("rte"), PairTokenizer(), 64)


def save_deberta_dir(path: Path, texts: list[str]) -> Path:
    """A tiny DeBERTa-v3-style base model ("v3") with a WordPiece tokenizer over ``texts``, as from_pretrained expects."""
    from transformers import BertTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("\n".join(wordpiece_vocabulary(texts, size=200)) + "\n")
    tokenizer = BertTokenizerFast(vocab=str(path / "vocab.txt"))
    torch.manual_seed(0)
    model = DebertaV2Model(deberta_config("v3", vocab_size=len(tokenizer)))
    _randomize_norms_and_biases(model)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def deberta_dir(tmp_path_factory, glue_dir):
    """``save_deberta_dir`` over the RTE slice."""
    from syne_prune.data import load_task

    texts = [t for column in load_task("rte", glue_dir).train.texts for t in column]
    return save_deberta_dir(tmp_path_factory.mktemp("deberta-model"), texts)


def test_supernet_training_changes_the_weights_and_extracts_exactly(deberta_dir, glue_dir, tmp_path):
    """Sandwich training on 24 RTE pairs: most layer tensors change; the trained super-network's extracted
    sub-network equals its masked self (1e-5)."""
    from safetensors.torch import load_file

    from syne_prune.supernet import TrainingConfig, load_supernet, train_supernet

    config = TrainingConfig(teacher=None, model=str(deberta_dir), task="rte", output=str(tmp_path / "out"), data_dir=str(glue_dir),
                            search_space="medium", strategy="sandwich", epochs=1, batch_size=8, max_train_examples=24,
                            max_eval_examples=16, lr=1e-3, max_length=48)
    metadata = train_supernet(config, progress=False)
    before, after = load_file(deberta_dir / "model.safetensors"), load_file(tmp_path / "out" / "model.safetensors")
    layer_keys = [k for k in before if ".layer." in k]
    changed = [k for k in layer_keys if not torch.equal(before[k], after[f"deberta.{k}"])]
    assert len(layer_keys) == 32 and len(changed) > 24, changed
    assert 0 <= metadata["metrics"]["smallest"]["validation"]["error"] <= 1
    model = load_supernet(tmp_path / "out").model.eval()
    mask = SubnetMask.from_counts([3, 1], [30, 7], 4, 37)
    batch = {k: v.clamp(max=model.config.vocab_size - 1) for k, v in tiny_batch().items()}
    with torch.inference_mode(), masked(model, mask):
        want = model(**batch).logits
    with torch.inference_mode():
        assert (extract_subnetwork(model, mask)(**batch).logits - want).abs().max() <= TOLERANCE
