"""The families added after BERT/RoBERTa/DistilBERT (``NEW_ARCHS``: XLM-RoBERTa, ELECTRA, the latter with and
without an embedding projection) through the invariants the first three are held to elsewhere: extraction equals
masking, parameters equal numel(), MACs equal torch's FLOP counter / 2, unit permutations keep the outputs, and
exports reload to the same outputs with and without syne-prune."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers
from conftest import HIDDEN, NEW_ARCHS, SPACES, check_extraction, reload_without_syne_prune, tiny_batch, tiny_model

from syne_prune import get_family, get_search_space, masked
from syne_prune.export import export_subnetwork
from syne_prune.importance import permute_units
from syne_prune.models import FAMILIES
from syne_prune.objectives import subnet_size

TOLERANCE = 1e-5
HEADS = ("classifier", "regression", "multiple_choice", "base")
AUTO = {"classifier": "AutoModelForSequenceClassification", "regression": "AutoModelForSequenceClassification",
        "multiple_choice": "AutoModelForMultipleChoice", "base": "AutoModel"}
# (arch, extra config fields): ELECTRA by default has embedding_size 24 < hidden 32 (embeddings_project); also without.
VARIANTS = [(arch, {}) for arch in NEW_ARCHS] + [("electra", {"embedding_size": HIDDEN})]
VARIANT_IDS = [arch for arch in NEW_ARCHS] + ["electra-no-projection"]


def _outputs(model, batch):
    out = model(**batch)
    return out.logits if hasattr(out, "logits") else out.last_hidden_state


def _configs(space, count=20, seed=0):
    rng = np.random.RandomState(seed)
    return [space.smallest(), space.largest(), space.midpoint()] + [space.sample(rng) for _ in range(count)]


def _macs_batch(head, seq_len=11):
    batch = tiny_batch(length=seq_len, batch=1)
    return {k: v[:, None] for k, v in batch.items()} if head == "multiple_choice" else batch  # one sequence either way


def test_new_families_are_registered_and_named_in_the_error():
    assert list(FAMILIES) == ["bert", "roberta", "distilbert", "xlm-roberta", "electra", "deberta-v2", "modernbert"]
    assert get_family(tiny_model("xlm-roberta").config).pruned_model_type == "syne_prune_xlm_roberta"
    assert get_family(tiny_model("electra").config).pruned_model_type == "syne_prune_electra"


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
def test_extraction_masking_params_and_macs_agree(variant, head):
    """Per space, 20 seeded random configurations plus smallest, largest and midpoint: the extracted model's
    outputs equal the masked super-network's (1e-5), its numel() equals the parameter count, the layers' numel()
    the encoder count, and torch's FLOP counter / 2 on one sequence of 11 tokens equals the MAC count."""
    arch, extra = variant
    model = tiny_model(arch, head, attn_implementation="eager", **extra)  # eager: attention matmuls are counted
    assert subnet_size(model).params == sum(p.numel() for p in model.parameters())
    family = get_family(model.config)
    batch = tiny_batch(choices=4 if head == "multiple_choice" else 0)
    with torch.inference_mode():
        full = _outputs(model, batch)
        for space_name in SPACES:
            space = get_search_space(space_name, family.shape(model.config))
            for config in _configs(space):
                check_extraction(model, space.to_mask(config), batch, TOLERANCE, macs_batch=_macs_batch(head))
        assert torch.equal(_outputs(model, batch), full)


def test_electra_embedding_projection_is_counted_on_every_token():
    """embeddings_project (24 -> 32 on each of n tokens) adds 24·32 + 32 parameters and n·24·32 MACs."""
    projected, square = tiny_model("electra", "base"), tiny_model("electra", "base", embedding_size=HIDDEN)
    embeddings = (101 + 512 + 2) * (24 - HIDDEN) + 2 * (24 - HIDDEN)  # word, position, token type; LayerNorm
    assert subnet_size(projected).params - subnet_size(square).params == embeddings + 24 * HIDDEN + HIDDEN
    assert subnet_size(projected, seq_len=10).macs - subnet_size(square, seq_len=10).macs == 10 * 24 * HIDDEN


@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
def test_unit_permutation_keeps_the_outputs(variant):
    arch, extra = variant
    model = tiny_model(arch, "classifier", **extra)
    batch = tiny_batch()
    generator = torch.Generator().manual_seed(3)
    shape = get_family(model.config).shape(model.config)
    with torch.inference_mode():
        want = model(**batch).logits
        heads = torch.stack([torch.randperm(shape.num_heads, generator=generator) for _ in range(shape.num_layers)])
        neurons = torch.stack([torch.randperm(shape.num_neurons, generator=generator) for _ in range(shape.num_layers)])
        permute_units(model, heads, neurons)
        assert (model(**batch).logits - want).abs().max() <= TOLERANCE


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Every new family variant x head x space, one random configuration each, exported once for the module."""
    root = tmp_path_factory.mktemp("family-exports")
    batches = {head: tiny_batch(choices=4 if head == "multiple_choice" else 0) for head in HEADS}
    records = []
    for (arch, extra), name in zip(VARIANTS, VARIANT_IDS):
        for head in HEADS:
            model = tiny_model(arch, head, **extra)
            for space_name in SPACES:
                space = get_search_space(space_name, get_family(model.config).shape(model.config))
                mask = space.to_mask(space.sample(np.random.RandomState(len(records))))
                with torch.inference_mode(), masked(model, mask):
                    want = _outputs(model, batches[head])
                out = export_subnetwork(model, mask, root / f"{name}-{head}-{space_name}")
                records.append((str(out), head, want, subnet_size(model, mask).params))
    torch.save({"batches": batches, "auto": AUTO, "records": [(o, h, w) for o, h, w, _ in records]}, root / "expected.pt")
    return root, batches, records


def test_exports_reload_with_syne_prune_to_the_masked_outputs(exports):
    _, batches, records = exports
    pruned = 0
    for out, head, want, params in records:
        model = getattr(transformers, AUTO[head]).from_pretrained(out).eval()
        pruned += model.config.model_type.startswith("syne_prune_")
        assert sum(p.numel() for p in model.parameters()) == params
        with torch.inference_mode():
            assert (_outputs(model, batches[head]) - want).abs().max() <= TOLERANCE, out
    assert 0 < pruned < len(records)  # both pruned and stock configs were exported


@pytest.mark.slow
def test_exports_reload_without_syne_prune_via_trust_remote_code(exports, tmp_path):
    root, _, records = exports
    worst, count = reload_without_syne_prune(root / "expected.pt", tmp_path)
    assert worst <= TOLERANCE and count == len(VARIANTS) * len(HEADS) * len(SPACES) == len(records)
