"""Importance scores and ordering: exact function preservation, the Fisher definition, planted units, training."""
from __future__ import annotations

import copy
import json

import pytest
import torch
from conftest import ARCHS, HEADS, LAYERS, NEURONS, NEW_ARCHS, tiny_batch, tiny_model
from helpers import fails, train_args

from syne_prune import InPlaceMask, SubnetMask, get_family, get_search_space, masked
from syne_prune import importance as importance_module
from syne_prune.cli import main
from syne_prune.importance import (
    ORDERED_ATTRIBUTE,
    ImportanceScores,
    fisher_scores,
    magnitude_scores,
    order_by_importance,
    ordered_by,
    permute_by_importance,
    score_importance,
)
from syne_prune.supernet import train as train_module

HEAD_KINDS = ("classifier", "regression", "multiple_choice", "base")


def _labelled(head: str, seed: int = 0, batch: int = 3) -> dict[str, torch.Tensor]:
    inputs = tiny_batch(seed=seed, batch=batch, choices=3 if head == "multiple_choice" else 0)
    if head == "regression":
        inputs["labels"] = torch.randn(batch, generator=torch.Generator().manual_seed(seed))
    elif head == "multi_label":  # 0/1 per class of 3
        inputs["labels"] = (torch.arange(batch * 3).view(batch, 3) % 2).float()
    elif head == "token":  # a tag per token, -100 on padding and on every third token (sub-words after the first)
        labels = torch.arange(inputs["input_ids"].numel()).view_as(inputs["input_ids"]) % 3
        labels[:, 1::3] = -100
        inputs["labels"] = labels.masked_fill(inputs["attention_mask"] == 0, -100)
    elif head != "base":
        inputs["labels"] = torch.arange(batch) % 3
    return inputs


def _outputs(model, batch) -> torch.Tensor:
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        output = model(**inputs)
    return output.last_hidden_state if model.base_model is model else output.logits


def _parts(model, layer: int):
    arch = get_family(model.config)
    return arch.parts(arch.layers(model)[layer])


@pytest.mark.parametrize("head", HEAD_KINDS)
@pytest.mark.parametrize("arch", ARCHS + NEW_ARCHS)  # ModernBERT, DeBERTa: test_family_pipeline.py
def test_permutation_preserves_outputs_and_moves_the_weights(arch, head):
    model = tiny_model(arch, head)
    batch = _labelled(head)
    before = _outputs(model, batch)
    original = copy.deepcopy(model)
    # Ascending scores: the order is reversed, so every head and neuron moves.
    reverse = ImportanceScores("test", torch.arange(HEADS).float().repeat(LAYERS, 1), torch.arange(NEURONS).float().repeat(LAYERS, 1))
    head_order, neuron_order = permute_by_importance(model, reverse)
    assert head_order[0].tolist() == [3, 2, 1, 0] and neuron_order[1, 0] == NEURONS - 1
    torch.testing.assert_close(_outputs(model, batch), before, atol=1e-5, rtol=0)
    dim = get_family(model.config).shape(model.config).head_dim
    new, old = _parts(model, 1), _parts(original, 1)
    assert not torch.equal(new.query.weight, old.query.weight)  # the weights did move ...
    torch.testing.assert_close(new.value.weight[:dim], old.value.weight[3 * dim:], atol=0, rtol=0)  # ... as a block
    torch.testing.assert_close(new.value.bias[:dim], old.value.bias[3 * dim:], atol=0, rtol=0)
    torch.testing.assert_close(new.attention_output.weight[:, :dim], old.attention_output.weight[:, 3 * dim:], atol=0, rtol=0)
    torch.testing.assert_close(new.ffn_input.weight[0], old.ffn_input.weight[NEURONS - 1], atol=0, rtol=0)
    torch.testing.assert_close(new.ffn_output.weight[:, 0], old.ffn_output.weight[:, NEURONS - 1], atol=0, rtol=0)
    torch.testing.assert_close(new.attention_output.bias, old.attention_output.bias, atol=0, rtol=0)  # shared, unmoved

    # The real thing: scores from the data, then descending scores along every layer and the same outputs.
    record = order_by_importance(model, [batch], "magnitude" if head == "base" else "fisher")
    torch.testing.assert_close(_outputs(model, batch), before, atol=1e-5, rtol=0)
    for scores in record["head_scores"] + record["neuron_scores"]:
        assert all(a >= b for a, b in zip(scores, scores[1:])), scores
    assert sorted(record["head_order"][0]) == list(range(HEADS)) and len(record["neuron_scores"][1]) == NEURONS
    json.dumps(record)  # JSON-able


def _reference_fisher(model, batch):
    """The definition, one example at a time: sum over examples of (dL(x)/dm)^2 with masks of ones."""
    shape = get_family(model.config).shape(model.config)
    heads, neurons = torch.zeros(LAYERS, HEADS), torch.zeros(LAYERS, NEURONS)
    masker = InPlaceMask(model)
    for i in range(batch["labels"].shape[0]):
        head_mask = torch.ones(shape.num_layers, shape.num_heads, requires_grad=True)
        neuron_mask = torch.ones(shape.num_layers, shape.num_neurons, requires_grad=True)
        masker.set_scales(head_mask, neuron_mask)
        loss = model(**{k: v[i:i + 1] for k, v in batch.items()}).loss
        head_grad, neuron_grad = torch.autograd.grad(loss, (head_mask, neuron_mask))
        heads += head_grad**2
        neurons += neuron_grad**2
    masker.remove()
    return heads, neurons


@pytest.mark.parametrize("head", ["classifier", "regression", "multiple_choice", "token", "multi_label"])
def test_fisher_is_the_sum_of_squared_per_example_gradients(head):
    """One example's loss is the model's loss on it alone: for a tagger, the mean over its own labelled tokens
    (the padded first row has fewer than the others, so a batch's mean over all its tokens would weigh it less)."""
    model = tiny_model("roberta", "classifier" if head == "multi_label" else head)
    if head == "multi_label":
        model.config.problem_type = "multi_label_classification"  # binary cross-entropy per class
    batch = _labelled(head, batch=4)
    expected_heads, expected_neurons = _reference_fisher(model, batch)
    model.zero_grad(set_to_none=True)
    model.train()
    scores = score_importance(model, [{k: v[:3] for k, v in batch.items()}, {k: v[3:] for k, v in batch.items()}], "fisher")
    assert scores.num_examples == 4 and scores.method == "fisher"
    torch.testing.assert_close(scores.heads, expected_heads, rtol=1e-4, atol=1e-9)
    torch.testing.assert_close(scores.neurons, expected_neurons, rtol=1e-4, atol=1e-9)
    assert scores.heads.min() > 0  # every head matters a little in a random model
    assert model.training and all(p.grad is None and p.requires_grad for p in model.parameters())  # left as found


@pytest.mark.parametrize("method", ["fisher", "magnitude"])
@pytest.mark.parametrize("arch", ARCHS)
def test_a_planted_dominant_head_and_neuron_come_first(arch, method):
    model = tiny_model(arch, "classifier", seed=1)
    dim = get_family(model.config).shape(model.config).head_dim
    parts = _parts(model, 1)
    with torch.no_grad():
        parts.value.weight[2 * dim:3 * dim] *= 10  # head 2 of layer 1 dominates the attention output
        parts.value.bias[2 * dim:3 * dim] *= 10
        parts.ffn_output.weight[:, 5] *= 10  # neuron 5 of layer 1 dominates the FFN output
        parts.ffn_input.weight[5] *= 3
    batches = [_labelled("classifier", seed=s, batch=6) for s in range(2)]
    record = order_by_importance(model, batches, method)
    assert record["head_order"][1][0] == 2 and record["neuron_order"][1][0] == 5
    assert ordered_by(model) == method


def test_small_subnetwork_of_the_ordered_model_is_the_top_k_of_the_original():
    model = tiny_model("bert", "classifier")
    batch = _labelled("classifier", batch=6)
    scores = fisher_scores(model, [batch])
    ordered = copy.deepcopy(model)
    permute_by_importance(ordered, scores)
    space = get_search_space("small", get_family(model.config).shape(model.config))
    first_k = space.to_mask({"num_layers": 2, "num_heads": 2, "num_units": 9})
    head_order, neuron_order = scores.orders()
    top_heads = torch.zeros(LAYERS, HEADS, dtype=torch.bool).scatter_(1, head_order[:, :2], True)
    top_neurons = torch.zeros(LAYERS, NEURONS, dtype=torch.bool).scatter_(1, neuron_order[:, :9], True)
    with masked(ordered, first_k):
        ordered_out = _outputs(ordered, batch)
    with masked(model, SubnetMask(top_heads, top_neurons)):
        top_k_out = _outputs(model, batch)
    with masked(model, first_k):
        unordered_out = _outputs(model, batch)
    torch.testing.assert_close(ordered_out, top_k_out, atol=1e-5, rtol=0)
    assert (ordered_out - unordered_out).abs().max() > 1e-2  # the first k of the original are other heads


def test_an_ordered_model_is_not_ordered_again(tmp_path):
    model = tiny_model("distilbert", "classifier")
    batch = _labelled("classifier")
    first = order_by_importance(model, [batch], "fisher")
    assert first["num_examples"] == 3
    model.save_pretrained(tmp_path)
    reloaded = type(model).from_pretrained(tmp_path)
    assert ordered_by(reloaded) == "fisher"  # the mark travels in config.json
    before = {k: v.clone() for k, v in reloaded.state_dict().items()}
    assert order_by_importance(reloaded, [batch], "magnitude") == {"method": "magnitude", "already_ordered_by": "fisher"}
    assert all(torch.equal(before[k], v) for k, v in reloaded.state_dict().items())
    forced = order_by_importance(reloaded, [batch], "magnitude", force=True)
    assert forced["method"] == "magnitude" and ordered_by(reloaded) == "magnitude"


def test_bad_inputs_are_one_line_errors():
    from syne_prune import SynePruneError

    with pytest.raises(SynePruneError, match="unknown importance method 'taylor'; choose one of fisher, magnitude"):
        score_importance(tiny_model("bert"), [], "taylor")
    with pytest.raises(SynePruneError, match="fisher importance needs a task model with a loss, not BertModel"):
        fisher_scores(tiny_model("bert", "base"), [_labelled("base")])
    with pytest.raises(SynePruneError, match="fisher importance needs batches with labels"):
        fisher_scores(tiny_model("bert"), [_labelled("base")])
    wrong = ImportanceScores("test", torch.zeros(LAYERS, HEADS + 1), torch.zeros(LAYERS, NEURONS))
    with pytest.raises(SynePruneError, match=r"head order of shape \(2, 5\) is not a permutation of 4 heads"):
        permute_by_importance(tiny_model("bert"), wrong)
    assert magnitude_scores(tiny_model("bert", "base")).heads.shape == (LAYERS, HEADS)


def test_train_supernet_records_the_ordering_and_resume_does_not_permute_again(tiny_model_dirs, glue_dir, tmp_path, capsys, monkeypatch):
    permutations = []
    real_permute = importance_module.permute_units
    monkeypatch.setattr(importance_module, "permute_units", lambda *a: (permutations.append(a[1].clone()), real_permute(*a)))
    real_save = train_module._save_resume_state

    def killed_after_first_epoch(*args, **kwargs):
        real_save(*args, **kwargs)
        raise KeyboardInterrupt("killed")

    out = tmp_path / "supernet"
    argv = train_args(tiny_model_dirs["bert"], glue_dir, out, "--importance", "fisher", "--importance-examples", "12")
    argv[argv.index("--epochs") + 1] = "2"
    monkeypatch.setattr(train_module, "_save_resume_state", killed_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        main(argv)
    assert len(permutations) == 1
    saved = json.loads((out / ".importance.json").read_text())
    monkeypatch.setattr(train_module, "_save_resume_state", real_save)
    assert main(argv + ["--resume"]) == 0
    assert len(permutations) == 1  # the resumed model (weights from .resume/state.pt) is already ordered
    meta = json.loads((out / "supernet.json").read_text())
    record = meta["importance"]
    assert record == saved and record["method"] == "fisher" and record["num_examples"] == 12
    assert record["head_order"] == permutations[0].tolist()
    assert all(a >= b for row in record["head_scores"] for a, b in zip(row, row[1:]))
    assert meta["hyperparameters"]["importance"] == "fisher" and [h["epoch"] for h in meta["history"]] == [1, 2]
    assert json.loads((out / "config.json").read_text())["syne_prune_importance"] == "fisher"
    assert not (out / ".importance.json").exists() and ".importance.json" not in meta["manifest"]


@pytest.mark.parametrize(
    "change, message",
    [
        (("--importance", "bogus"), "argument --importance: unknown importance 'bogus'; choose one of none, fisher, magnitude"),
        (("--importance-examples", "0"), "--importance-examples must be a positive integer, got 0"),
    ],
)
def test_train_supernet_bad_importance_option(tiny_model_dirs, glue_dir, tmp_path, capsys, change, message):
    fails(capsys, train_args(tiny_model_dirs["bert"], glue_dir, tmp_path / "out", *change), message)
    assert not (tmp_path / "out").exists()


def test_standard_orders_nothing_so_a_fine_tuned_start_is_ordered_with_its_trained_head(tiny_model_dirs, glue_dir, tmp_path):
    """`standard` trains no sub-network: it leaves the order alone (no mark), so a super-network trained from its output
    is ordered then, on the fine-tuned model, instead of being skipped as already ordered."""
    from syne_prune.supernet import TrainingConfig, train_supernet

    common = dict(task="rte", data_dir=str(glue_dir), search_space="medium", epochs=1, batch_size=8, max_train_examples=16,
                  max_eval_examples=8, lr=1e-3, max_length=32, importance="fisher", importance_examples=8)
    fine_tuned = train_supernet(TrainingConfig(teacher=None, model=str(tiny_model_dirs["bert"]), output=str(tmp_path / "ft"), strategy="standard",
                                               **common), progress=False)
    assert fine_tuned["importance"]["method"] == "none" and "standard" in fine_tuned["importance"]["reason"]
    assert json.loads((tmp_path / "ft" / "config.json").read_text()).get(ORDERED_ATTRIBUTE) is None
    supernet = train_supernet(TrainingConfig(teacher=None, model=str(tmp_path / "ft"), output=str(tmp_path / "sn"), strategy="full", **common),
                              progress=False)
    assert supernet["importance"]["method"] == "fisher" and "already_ordered_by" not in supernet["importance"]
    assert supernet["importance"]["num_examples"] == 8
