"""The family contract, held by every family and variant in ``VARIANTS``: extraction equals masking, parameters
equal numel(), MACs equal torch's FLOP counter / 2, unit permutations keep the outputs, and exports reload to the
masked outputs with and without syne-prune. Adding a family means adding its tiny variants to ``VARIANTS``.

Tiny random models built in code (``conftest.py``): no network, no downloads."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
import transformers
from conftest import (
    HIDDEN,
    SPACES,
    check_extraction,
    deberta_batch,
    deberta_model,
    modernbert,
    modernbert_batch,
    reload_without_syne_prune,
    tiny_batch,
    tiny_model,
)

from syne_prune import SubnetMask, get_family, get_search_space, masked
from syne_prune.export import MODELING_FILE, export_subnetwork
from syne_prune.importance import permute_units
from syne_prune.models import FAMILIES
from syne_prune.objectives import subnet_size

TOLERANCE = 1e-5
HEADS = ("classifier", "regression", "multiple_choice", "token", "base")
AUTO = {"classifier": "AutoModelForSequenceClassification", "regression": "AutoModelForSequenceClassification",
        "multiple_choice": "AutoModelForMultipleChoice", "token": "AutoModelForTokenClassification", "base": "AutoModel"}


@dataclass(frozen=True)
class Variant:
    """A tiny model of one family: ``build(head, attn_implementation)``, ``batch(head)``, and the (head, attention
    implementation) cases the contract runs on it ("eager": torch's FLOP counter sees the attention matmuls)."""

    family: str
    build: Callable[[str, str], torch.nn.Module]
    batch: Callable[[str], dict[str, torch.Tensor]]
    cases: tuple[tuple[str, str], ...] = field(default=tuple((head, "eager") for head in HEADS))


def _conftest_batch(head: str) -> dict[str, torch.Tensor]:
    return tiny_batch(choices=4 if head == "multiple_choice" else 0)


def _tiny(arch: str, **extra) -> Variant:
    return Variant(arch, lambda head, attention: tiny_model(arch, head, attn_implementation=attention, **extra), _conftest_batch)


def _deberta(variant: str, cases=None) -> Variant:
    return Variant("deberta-v2", lambda head, attention: deberta_model(variant, head), lambda head: deberta_batch(variant, head),
                   **({"cases": cases} if cases else {}))


VARIANTS = {
    "bert": _tiny("bert"),
    "roberta": _tiny("roberta"),
    "distilbert": _tiny("distilbert"),
    "xlm-roberta": _tiny("xlm-roberta"),
    # ELECTRA by default has embedding_size 24 < hidden 32 (embeddings_project); also without
    "electra": _tiny("electra"),
    "electra-no-projection": _tiny("electra", embedding_size=HIDDEN),
    # DeBERTa variants: conftest.DEBERTA_VARIANTS; the convolution only changes the encoder: the classifier
    "deberta-v3": _deberta("v3"),
    "deberta-v2": _deberta("v2"),
    "deberta-head-size": _deberta("head_size"),
    "deberta-conv": _deberta("conv", cases=(("classifier", "eager"),)),
    "modernbert": Variant("modernbert", lambda head, attention: modernbert(head, attn_implementation=attention), modernbert_batch),
    "modernbert-biased": Variant("modernbert", lambda head, attention: modernbert(head, "biased", attn_implementation=attention),
                                 modernbert_batch, cases=(("classifier", "eager"), ("base", "sdpa"))),
}
CASES = [(name, head, attention) for name, variant in VARIANTS.items() for head, attention in variant.cases]


def _tier(name: str, head: str, attention: str):
    """The fast tier checks every variant's classifier, every head on BERT and every non-eager attention; the full
    suite every case."""
    fast = head == "classifier" or name == "bert" or attention != "eager"
    return (name, head, attention) if fast else pytest.param(name, head, attention, marks=pytest.mark.slow)


def _outputs(model, batch):
    out = model(**batch)
    return out.logits if hasattr(out, "logits") else out.last_hidden_state


def _masks(space, count: int = 20, seed: int = 0) -> list[SubnetMask]:
    """The distinct masks of the smallest, largest and midpoint configurations and ``count`` seeded samples."""
    rng = np.random.RandomState(seed)
    configs = [space.smallest(), space.largest(), space.midpoint()] + [space.sample(rng) for _ in range(count)]
    return list(dict.fromkeys(space.to_mask(c) for c in configs))


def _one_sequence(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v[:1, :1] if v.dim() == 3 else v[:1] for k, v in batch.items()}  # one sequence (one choice)


def test_every_family_has_contract_variants_and_its_pruned_type():
    assert list(FAMILIES) == ["bert", "roberta", "distilbert", "xlm-roberta", "electra", "deberta-v2", "modernbert"]
    assert {variant.family for variant in VARIANTS.values()} == set(FAMILIES)
    for name, variant in VARIANTS.items():
        family = get_family(variant.build("classifier", "eager").config)
        assert family is FAMILIES[variant.family]
        assert family.pruned_model_type == "syne_prune_" + variant.family.replace("-", "_"), name


@pytest.mark.parametrize("name, head, attention", [_tier(*case) for case in CASES])
def test_extraction_equals_masking_with_exact_sizes(name, head, attention):
    """Per space, the distinct masks of 23 configurations (extremes, midpoint, 20 seeded): the extracted model's
    outputs equal the masked super-network's (1e-5), its numel() equals the parameter count, the layers' numel()
    the encoder count, and (eager attention) torch's FLOP counter / 2 on one sequence of 11 tokens equals the MAC
    count; the super-network's outputs are unchanged afterwards."""
    variant = VARIANTS[name]
    model, batch = variant.build(head, attention), variant.batch(head)
    assert subnet_size(model).params == sum(p.numel() for p in model.parameters())
    family = get_family(model.config)
    with torch.inference_mode():
        full = _outputs(model, batch)
        for space_name in SPACES:
            space = get_search_space(space_name, family.shape(model.config))
            for mask in _masks(space):
                check_extraction(model, mask, batch, TOLERANCE, macs_batch=_one_sequence(batch) if attention == "eager" else None)
        assert torch.equal(_outputs(model, batch), full)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_unit_permutation_keeps_the_outputs_and_maps_masks(name):
    """Permuting heads (with every parameter that runs over them) and neurons changes no output (1e-5), and the
    masked permuted model equals the masked original under the permuted mask."""
    variant = VARIANTS[name]
    model, batch = variant.build("classifier", "sdpa"), variant.batch("classifier")
    shape = get_family(model.config).shape(model.config)
    layers, heads, neurons = shape.num_layers, shape.num_heads, shape.num_neurons
    with torch.inference_mode():
        want = _outputs(model, batch)
    generator = torch.Generator().manual_seed(5)
    head_order = torch.stack([torch.randperm(heads, generator=generator) for _ in range(layers)])
    neuron_order = torch.stack([torch.randperm(neurons, generator=generator) for _ in range(layers)])
    permute_units(model, head_order, neuron_order)
    mask = SubnetMask.from_counts([2, 3] * (layers // 2), [10, 20] * (layers // 2), heads, neurons)
    original_mask = SubnetMask(torch.zeros(layers, heads, dtype=torch.bool).scatter(1, head_order, mask.heads),
                               torch.zeros(layers, neurons, dtype=torch.bool).scatter(1, neuron_order, mask.neurons))
    original = variant.build("classifier", "sdpa")
    with torch.inference_mode():
        assert (_outputs(model, batch) - want).abs().max() <= TOLERANCE
        with masked(model, mask):
            got = _outputs(model, batch)
        with masked(original, original_mask):
            expected = _outputs(original, batch)
    assert (got - expected).abs().max() <= TOLERANCE


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Every variant x head: one random configuration per space, plus (classifier) the full and the empty mask;
    exported once for the module."""
    root = tmp_path_factory.mktemp("family-exports")
    records = []
    for name, head, _ in CASES:
        variant = VARIANTS[name]
        model, batch = variant.build(head, "sdpa"), variant.batch(head)
        shape = get_family(model.config).shape(model.config)
        masks = {space_name: get_search_space(space_name, shape).to_mask(get_search_space(space_name, shape).sample(
            np.random.RandomState(len(records) + i))) for i, space_name in enumerate(SPACES)}
        if head == "classifier":
            masks["full"] = SubnetMask.full(shape.num_layers, shape.num_heads, shape.num_neurons)
            masks["empty"] = SubnetMask.from_counts([0] * shape.num_layers, [0] * shape.num_layers, shape.num_heads, shape.num_neurons)
        for mask_name, mask in masks.items():
            with torch.inference_mode(), masked(model, mask):
                want = _outputs(model, batch)
            out = export_subnetwork(model, mask, root / f"{name}-{head}-{mask_name}")
            records.append((str(out), name, head, batch, want, subnet_size(model, mask).params))
    torch.save({"batches": None, "auto": AUTO, "records": [(o, h, b, w, p) for o, _, h, b, w, p in records]}, root / "expected.pt")
    return root, records


def test_exports_reload_with_syne_prune_to_the_masked_outputs(exports):
    """Each export loads with its Auto class to the masked outputs (1e-5) and parameter count; it carries modeling
    code exactly when its config is a pruned one; every family exports both stock and pruned configs."""
    _, records = exports
    kinds = {family: set() for family in FAMILIES}
    for out, name, head, batch, want, params in records:
        model = getattr(transformers, AUTO[head]).from_pretrained(out).eval()
        pruned = model.config.model_type.startswith("syne_prune_")
        kinds[VARIANTS[name].family].add(pruned)
        assert (Path(out) / MODELING_FILE).exists() == pruned, out
        assert sum(p.numel() for p in model.parameters()) == params, out
        with torch.inference_mode():
            assert (_outputs(model, batch) - want).abs().max() <= TOLERANCE, out
    assert all(seen == {False, True} for seen in kinds.values()), kinds


@pytest.mark.slow
def test_exports_reload_without_syne_prune_via_trust_remote_code(exports, tmp_path):
    root, records = exports
    worst, count = reload_without_syne_prune(root / "expected.pt", tmp_path)
    assert worst <= TOLERANCE and count == len(records) == len(CASES) * len(SPACES) + 2 * len(VARIANTS)
