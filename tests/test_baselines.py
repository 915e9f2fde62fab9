"""Baselines (syne_prune/baselines): budgets met exactly, RFP exports, mask tuning, head/layer order, sweeps, errors."""
from __future__ import annotations

import csv
import json

import pytest
import torch
from conftest import HEADS, LAYERS
from test_cli import _fails
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from syne_prune.baselines import METHODS, prune
from syne_prune.baselines.rfp import unit_costs
from syne_prune.cli import main
from syne_prune.data import data_loader, encode, get_task, load_task
from syne_prune.models import load_task_model
from syne_prune.objectives import subnet_size
from syne_prune.surgery import extract_subnetwork

QUICK = dict(examples=24, max_length=48, max_eval_examples=16, max_train_examples=48, progress=False)


def _save_task_model(base_dir, path, edit=None):
    model = load_task_model(str(base_dir), get_task("rte"))
    if edit is not None:
        edit(model)
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def finetuned(tiny_model_dirs, tmp_path_factory):
    """A tiny BERT with an RTE head (2 labels) and tokenizer: what `prune` takes."""
    return _save_task_model(tiny_model_dirs["bert"], tmp_path_factory.mktemp("finetuned") / "bert")


def _full(path):
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    return model, subnet_size(model)


@pytest.mark.parametrize("method", list(METHODS))
def test_each_method_meets_the_budget_exactly(method, finetuned, glue_dir, tmp_path):
    model, full = _full(finetuned)
    results = prune(method, str(finetuned), "rte", max_params="0.95,0.85", output=tmp_path / "out", data_dir=str(glue_dir),
                    finetune_epochs=0, **QUICK)
    assert [r.row["budget"] for r in results] == [0.95, 0.85]
    for result in results:
        record = json.loads((result.path / "syne_prune.json").read_text())
        reloaded = AutoModelForSequenceClassification.from_pretrained(result.path)
        # the recorded count is subnet_size's, and it is the exported model's real parameter count
        assert record["params"] == sum(p.numel() for p in reloaded.parameters())
        assert record["params"] <= int(result.row["budget"] * full.params)
        assert result.row["params_ratio"] == pytest.approx(record["params"] / full.params, abs=1e-12)
        assert record["baseline"]["method"] == method and record["task"] == "rte"
        if method == "rfp":  # knapsack + refill: less than one neuron (in a removed FFN block: plus its constants) left
            _, neuron_cost, _ = unit_costs(_Ctx(model), "params")
            assert int(result.row["budget"] * full.params) - record["params"] < neuron_cost + 3 * model.config.hidden_size


class _Ctx:
    """The two fields unit_costs reads."""

    def __init__(self, model):
        from syne_prune.baselines.common import PruneSettings
        from syne_prune.models import get_architecture

        self.shape, self.settings = get_architecture(model.config).shape(model.config), PruneSettings()


def test_rfp_meets_a_mac_budget(finetuned, glue_dir, tmp_path):
    _, full = _full(finetuned)
    [result] = prune("rfp", str(finetuned), "rte", max_macs=0.6, output=tmp_path / "out", data_dir=str(glue_dir), **QUICK)
    record = json.loads((result.path / "syne_prune.json").read_text())
    assert record["macs_per_sequence_128"] <= int(0.6 * full.macs) and result.row["macs_ratio"] <= 0.6
    assert result.row["macs_ratio"] > 0.55  # close to the budget (one neuron is 1/1000 of the MACs here)


@pytest.fixture(scope="module")
def rfp_result(finetuned, glue_dir, tmp_path_factory):
    """RFP at 80% of the parameters (shared by the export and mask-tuning tests)."""
    [result] = prune("rfp", str(finetuned), "rte", max_params=0.8, output=tmp_path_factory.mktemp("rfp") / "out", data_dir=str(glue_dir), **QUICK)
    return result


def test_rfp_export_reloads_with_tuned_weights(rfp_result, finetuned):
    result = rfp_result
    reloaded = AutoModelForSequenceClassification.from_pretrained(result.path).eval()
    tokenizer = AutoTokenizer.from_pretrained(result.path)
    batch = tokenizer(["a man is playing a guitar .", "the cat sat"], ["someone plays music", "a dog"], padding=True, return_tensors="pt")
    with torch.no_grad():
        want, got = result.model(**batch).logits, reloaded(**batch).logits
        untuned = extract_subnetwork(_full(finetuned)[0], result.pruned.mask).eval()(**batch).logits
    assert (want - got).abs().max() < 1e-5
    assert (want - untuned).abs().max() > 1e-4  # the export carries the tuned scales, not the plain slices


def _pre_norm_sums(model, norm, batches):
    """Pre-LayerNorm inputs of ``norm`` over the non-padding tokens of ``batches``: [tokens, hidden]."""
    rows = []
    handle = norm.register_forward_pre_hook(lambda m, args: rows.append(args[0].reshape(-1, args[0].shape[-1])))
    with torch.no_grad():
        sums = []
        for batch in batches:
            rows.clear()
            model(**{k: v for k, v in batch.items() if k != "labels"})
            sums.append(rows[0][batch["attention_mask"].reshape(-1).bool()].double())
    handle.remove()
    return torch.cat(sums)


def test_mask_tuning_reduces_the_layer_reconstruction_error(rfp_result, finetuned, glue_dir):
    result = rfp_result
    records = result.pruned.info["mask_tuning"]
    assert records and all(r["error_tuned"] <= r["error_untuned"] for r in records)
    first = records[0]
    assert (first["layer"], first["block"]) == (0, "attention") and first["units"] < HEADS
    # measured independently: layer 0's attention sees the same embeddings in all three models
    model = _full(finetuned)[0]
    untuned = extract_subnetwork(model, result.pruned.mask).eval()
    tokenizer = AutoTokenizer.from_pretrained(finetuned)
    data = load_task("rte", glue_dir, 0.3, 0, QUICK["max_train_examples"])
    batches = list(data_loader(encode(data.train, tokenizer, QUICK["max_length"], False)[: QUICK["examples"]], tokenizer, 32))
    norm = lambda m: m.bert.encoder.layer[0].attention.output.LayerNorm  # noqa: E731
    target = _pre_norm_sums(model, norm(model), batches)
    before = float((_pre_norm_sums(untuned, norm(untuned), batches) - target).pow(2).sum())
    after = float((_pre_norm_sums(result.model, norm(result.model), batches) - target).pow(2).sum())
    assert before == pytest.approx(first["error_untuned"], rel=1e-4) and after == pytest.approx(first["error_tuned"], rel=1e-4)
    assert after < before, (before, after)  # least squares with m = 1 feasible: never worse; here 10435 -> 10358
    total_before, total_after = sum(r["error_untuned"] for r in records), sum(r["error_tuned"] for r in records)
    assert total_after < 0.97 * total_before, (total_before, total_after)


def _plant_heads(model):
    """Head 3 of layer 1 contributes nothing (zero output columns: gradient importance 0); head 0 of layer 0 dominates."""
    d = model.config.hidden_size // HEADS
    with torch.no_grad():
        model.bert.encoder.layer[1].attention.output.dense.weight[:, 3 * d:4 * d] = 0
        model.bert.encoder.layer[0].attention.output.dense.weight[:, :d] *= 6
        model.bert.encoder.layer[0].attention.self.value.weight[:d] *= 3


def test_head_prune_removes_the_lowest_importance_head_first(tiny_model_dirs, glue_dir, tmp_path):
    path = _save_task_model(tiny_model_dirs["bert"], tmp_path / "planted", _plant_heads)
    model, full = _full(path)
    head_cost, _, _ = unit_costs(_Ctx(model), "params")
    one_head = (full.params - head_cost) / full.params  # exactly one head's parameters less
    six_heads = (full.params - 6 * head_cost) / full.params
    results = prune("head-prune", str(path), "rte", max_params=[one_head, six_heads], output=tmp_path / "out", data_dir=str(glue_dir),
                    **QUICK)
    first, last = results
    assert first.pruned.info["removed_heads"] == [[1, 3]]
    assert first.pruned.mask.heads.sum() == LAYERS * HEADS - 1
    assert last.pruned.mask.heads.sum() == LAYERS * HEADS - 6 and bool(last.pruned.mask.heads[0, 0])
    assert last.pruned.info["removed_heads"][0] == [1, 3]  # the sweep continues the same removal order
    assert bool(last.pruned.mask.neurons.all())  # head pruning never touches FFN neurons


def test_layer_drop_keeps_the_bottom_layers(finetuned, glue_dir, tmp_path):
    model, _ = _full(finetuned)
    [result] = prune("layer-drop", str(finetuned), "rte", max_params=0.9, output=tmp_path / "out", data_dir=str(glue_dir),
                     finetune_epochs=0, **QUICK)
    assert result.pruned.mask.kept_layers == [0] and bool(result.pruned.mask.heads[0].all() and result.pruned.mask.neurons[0].all())
    reloaded = AutoModelForSequenceClassification.from_pretrained(result.path)
    assert reloaded.config.num_hidden_layers == 1
    assert torch.equal(reloaded.bert.encoder.layer[0].output.dense.weight, model.bert.encoder.layer[0].output.dense.weight)


def test_layer_drop_fine_tunes_in_the_shared_loop(finetuned, glue_dir, tmp_path):
    [result] = prune("layer-drop", str(finetuned), "rte", max_params=0.9, output=tmp_path / "out", data_dir=str(glue_dir), lr=1e-3, **QUICK)
    record = json.loads((result.path / "syne_prune.json").read_text())["baseline"]
    assert record["finetune_epochs"] == METHODS["layer-drop"].finetune_epochs == 3 and record["finetune_time_s"] > 0
    untouched = _full(finetuned)[0].bert.encoder.layer[0].output.dense.weight
    assert not torch.equal(result.model.bert.encoder.layer[0].output.dense.weight, untouched)


def test_cli_sweep_writes_one_export_per_budget_and_a_csv(finetuned, glue_dir, tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["prune", "--method", "rfp", "--model", str(finetuned), "--task", "rte", "--data-dir", str(glue_dir), "--max-params", "0.9,0.8",
            "--output", str(out), "--examples", "16", "--max-length", "48", "--max-train-examples", "32", "--max-eval-examples", "8"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.count("rfp params <= ") == 2 and f"results written to {out / 'results.csv'}" in printed
    with open(out / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["budget"] for r in rows] == ["0.9", "0.8"] and sorted(p.name for p in out.iterdir()) == ["0.8", "0.9", "results.csv"]
    for row in rows:
        assert float(row["params_ratio"]) <= float(row["budget"]) and 0 <= float(row["test_error"]) <= 1
        assert set(row) >= {"encoder_params_ratio", "macs_ratio", "valid_metric", "test_metric"}


@pytest.mark.parametrize("extra, message", [
    (["--max-params", "0"], "--max-params must be a ratio in (0, 1]"),
    (["--max-params", "0.5,1.5"], "--max-params must be a ratio in (0, 1]"),
    (["--max-params", "half"], "wants ratios like 0.5"),
    (["--max-params", "0.5", "--max-macs", "0.5"], "give exactly one of --max-params and --max-macs"),
    ([], "give exactly one of --max-params and --max-macs"),
    (["--max-params", "0.5", "--method", "magnitude"], "unknown pruning method 'magnitude'"),
    (["--max-params", "0.3", "--method", "head-prune"], "head-prune cannot go below"),
    (["--max-params", "0.5", "--task", "stsb"], "is not a model fine-tuned on 'stsb'"),
])
def test_bad_inputs_exit_2_with_one_line(extra, message, finetuned, glue_dir, tmp_path, capsys):
    argv = ["prune", "--method", "rfp", "--model", str(finetuned), "--task", "rte", "--data-dir", str(glue_dir), "--output", str(tmp_path / "o")]
    _fails(capsys, argv + extra, message)
    assert not (tmp_path / "o").exists()


def test_base_model_and_existing_output_are_refused(tiny_model_dirs, finetuned, glue_dir, tmp_path, capsys):
    argv = ["prune", "--method", "rfp", "--task", "rte", "--data-dir", str(glue_dir), "--max-params", "0.5"]
    _fails(capsys, argv + ["--model", str(tiny_model_dirs["bert"]), "--output", str(tmp_path / "o")], "(no task head")
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    _fails(capsys, argv + ["--model", str(finetuned), "--output", str(existing)], "already exists; choose a new --output or pass --overwrite")
    assert (existing / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("arch", ["roberta", "distilbert"])
def test_rfp_tunes_every_architecture(arch, tiny_model_dirs, glue_dir):
    """RFP on RoBERTa and DistilBERT (other layer layouts): exact budget, every tuned block's error not above the
    untuned one, and the tuned sub-network differs from the plain slices of the same mask."""
    from syne_prune.baselines import Budget, PruneContext, PruneSettings, rfp

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dirs[arch])
    model = load_task_model(str(tiny_model_dirs[arch]), get_task("rte")).eval()
    data = load_task("rte", glue_dir, 0.3, 0, 16)
    ctx = PruneContext(model, get_task("rte"), tokenizer, encode(data.train, tokenizer, 32, False), PruneSettings(examples=16))
    pruned = rfp.run(ctx, Budget("params", 0.8))
    assert ctx.ratio(pruned.mask, "params") <= 0.8 and pruned.info["mask_tuning"]
    assert all(r["error_tuned"] <= r["error_untuned"] for r in pruned.info["mask_tuning"])
    batch = {k: v for k, v in ctx.batches()[0].items() if k != "labels"}
    with torch.no_grad():
        tuned, plain = pruned.subnetwork(**batch).logits, extract_subnetwork(model, pruned.mask).eval()(**batch).logits
    assert (tuned - plain).abs().max() > 1e-5


def test_smallest_ratio_is_where_refusal_starts(finetuned, glue_dir, tmp_path):
    from syne_prune.baselines import smallest_ratio

    model, full = _full(finetuned)
    head_cost, _, _ = unit_costs(_Ctx(model), "params")
    # head-prune's floor: every head gone, each attention block's constants (3h) too
    want = (full.params - LAYERS * (HEADS * head_cost + 3 * model.config.hidden_size)) / full.params
    floor = smallest_ratio("head-prune", str(finetuned))
    assert floor == pytest.approx(want, abs=1e-12)
    with pytest.raises(Exception, match=f"cannot go below {floor:.4f} of the params"):
        prune("head-prune", str(finetuned), "rte", max_params=floor - 1e-3, output=tmp_path / "no", data_dir=str(glue_dir), **QUICK)
    [result] = prune("head-prune", str(finetuned), "rte", max_params=floor + 1e-9, output=tmp_path / "all", data_dir=str(glue_dir), **QUICK)
    assert int(result.pruned.mask.heads.sum()) == 0 and not (tmp_path / "no").exists()
