"""DeBERTa-v2/v3's own behaviour beyond the family contract (``test_family_contract.py``): the MAC terms of the
disentangled attention, its head size and relative-position shape, the convolution after layer 0, settings it cannot
run, its position and token-type limits, importance ordering, and super-network training. Tiny variants:
``conftest.DEBERTA_VARIANTS``."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import SPACES, VOCAB, deberta_batch, deberta_config, deberta_model, save_deberta_dir, tiny_batch
from transformers import DebertaV2ForSequenceClassification

from syne_prune import InPlaceMask, SubnetMask, SynePruneError, extract_subnetwork, get_family, get_search_space, masked
from syne_prune.importance import order_by_importance
from syne_prune.models import check_model_settings, load_model_config, usable_positions
from syne_prune.objectives import subnet_size
from syne_prune.surgery import pruned_config

TOLERANCE = 1e-5
HEADS = ("classifier", "regression", "multiple_choice", "base")
# (heads per layer, neurons per layer): non-uniform, uniform (stock config unless head_size), empty
EXPORT_MASKS = {"pruned": ([0, 3], [20, 5]), "uniform": ([4, 4], [20, 20]), "empty": ([0, 0], [0, 0])}


def _outputs(model, batch):
    out = model(**batch)
    return out.logits if hasattr(out, "logits") else out.last_hidden_state


@pytest.mark.parametrize("space_name", SPACES)
def test_each_space_gives_distinct_masks(space_name):
    """The 23 configurations (extremes, midpoint, 20 seeded) the contract extracts are 23 distinct masks (the layer
    space of 2 layers has 4), except in the small space."""
    model = deberta_model("v3")
    space = get_search_space(space_name, get_family(model.config).shape(model.config))
    rng = np.random.RandomState(3)
    configs = [space.smallest(), space.largest(), space.midpoint()] + [space.sample(rng) for _ in range(20)]
    masks = list(dict.fromkeys(space.to_mask(c) for c in configs))
    assert len(masks) == {"layer": 4}.get(space_name, 23) or space_name == "small"


@pytest.mark.parametrize("variant", ["v3", "v2", "head_size"])
@pytest.mark.parametrize("head", HEADS)
def test_a_stock_config_only_where_heads_times_head_size_is_the_hidden_size(variant, head):
    """A uniform sub-network gets the stock config, except with attention_head_size x heads != hidden_size, which the
    stock class cannot run; a non-uniform or empty one always gets the pruned config."""
    model = deberta_model(variant, head)
    for name, (heads, neurons) in EXPORT_MASKS.items():
        stock = name == "uniform" and variant != "head_size"
        config = pruned_config(model, SubnetMask.from_counts(heads, neurons, 4, 37))
        assert config.model_type == ("deberta-v2" if stock else "syne_prune_deberta_v2"), name


def test_mac_formula_terms_by_hand():
    """v2, full model, n = 11: per layer 3nhd·H + 2n²d·H + n·dH·h + 2(R·h·dH) + 2(n·R·dH) + 2nhI with R = 24."""
    n, h, H, d, inner, r = 11, 32, 4, 8, 37, 24
    per_layer = 3 * n * h * H * d + 2 * n * n * H * d + n * H * d * h + 2 * r * h * H * d + 2 * n * r * H * d + 2 * n * h * inner
    fixed = n * 24 * 32 + 32 * 32 + 32 * 3  # embed_proj on every token, pooler and classifier on the first
    assert subnet_size(deberta_model("v2"), seq_len=n).macs == 2 * per_layer + fixed == 299_360

def test_fisher_ordering_sorts_scores_and_keeps_outputs():
    model, batch = deberta_model("v2"), deberta_batch("v2", "classifier")
    with torch.inference_mode():
        want = _outputs(model, batch)
    record = order_by_importance(model, [{**batch, "labels": torch.tensor([0, 1, 2])}], method="fisher")
    with torch.inference_mode():
        assert (_outputs(model, batch) - want).abs().max() <= TOLERANCE
    for scores in record["head_scores"] + record["neuron_scores"]:
        assert scores == sorted(scores, reverse=True) and max(scores) > 0

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
