"""The families added after BERT/RoBERTa/DistilBERT (ModernBERT, DeBERTa-v2/v3, XLM-RoBERTa, ELECTRA) through the rest
of the pipeline: ONNX export, super-network training with every strategy, importance ordering, weight-sharing search
on the local and pool backends, and recovery of an export. The tiny models are those of conftest.py
(masking, extraction, sizes and exports of every family are tested in models/test_family_contract.py)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import (
    deberta_batch,
    deberta_config,
    deberta_model,
    modernbert,
    save_deberta_dir,
    save_modernbert_dir,
    save_tiny_model_dir,
    tiny_batch,
    tiny_model,
)
from safetensors.torch import load_file
from sagemaker_fixtures import sagemaker_settings

from syne_prune import SubnetMask, get_family, get_search_space, masked
from syne_prune.export import ONNX_TOLERANCE, export_subnetwork, onnx_input_names
from syne_prune.importance import order_by_importance
from syne_prune.objectives import subnet_size
from syne_prune.supernet import STRATEGIES, TrainingConfig, load_supernet, train_supernet

TOLERANCE = 1e-5
FAMILIES = ("modernbert", "deberta-v2", "xlm-roberta", "electra")


def _outputs(model, batch):
    out = model(**{k: v for k, v in batch.items() if k != "labels"})
    return out.logits if hasattr(out, "logits") else out.last_hidden_state


# ---- ONNX ----

def _pair_batch(model, seed: int = 5, batch: int = 4, length: int = 13) -> dict[str, torch.Tensor]:
    """Token ids with padding in the first row, and token type 1 on the second half of each row where the model has
    token types."""
    inputs = tiny_batch(seed=seed, batch=batch, length=length)
    if "token_type_ids" in onnx_input_names(model.config):
        inputs["token_type_ids"] = (torch.arange(length) >= length // 2).long().expand(batch, length).contiguous()
    return inputs


# name -> (model, heads per layer, neurons per layer): each removes a whole layer, some heads and some neurons (few
# layers are kept: the exporter's time grows with them)
ONNX_CASES = {
    # the first (global) and last layers go: a local and a global layer stay, the second without its FFN
    "modernbert": lambda: (modernbert("classifier"), [0, 3, 2, 0], [0, 20, 0, 0]),
    "modernbert-base": lambda: (modernbert("base", "biased"), [0, 3, 0, 0], [0, 20, 0, 0]),  # one local layer stays
    "deberta-v3": lambda: (deberta_model("v3"), [0, 3], [0, 20]),
    "xlm-roberta": lambda: (tiny_model("xlm-roberta"), [2, 0], [10, 0]),
    "electra": lambda: (tiny_model("electra"), [0, 3], [0, 20]),  # with embeddings_project and token types
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(ONNX_CASES))
def test_onnx_of_a_pruned_subnetwork_matches_pytorch(case, tmp_path):
    """The ONNX file of a sub-network without one layer and with fewer heads and neurons gives the masked
    super-network's outputs (ONNX Runtime vs PyTorch, max abs difference <= 1e-4, ONNX_TOLERANCE) on padded batches of
    other shapes than the traced one; hidden states (base model) at real tokens only: ModernBERT's padded queries in
    local-attention layers see no key at all, so their outputs are undefined (eager and sdpa differ there by > 0.1)."""
    import onnxruntime

    model, heads, neurons = ONNX_CASES[case]()
    shape = get_family(model.config).shape(model.config)
    mask = SubnetMask.from_counts(heads, neurons, shape.num_heads, shape.num_neurons)
    out = export_subnetwork(model, mask, tmp_path / "onnx", onnx=True)
    session = onnxruntime.InferenceSession(str(out / "model.onnx"))
    # 4 x 13 and 2 x 40 tokens: other shapes than the traced 2 x 16, the latter past the local window (4) and the
    # relative-position buckets (DeBERTa-v3: 8), where a shape specialised at export would show
    for batch in (_pair_batch(model), _pair_batch(model, seed=6, batch=2, length=40)):
        assert [i.name for i in session.get_inputs()] == list(onnx_input_names(model.config)) == list(batch)
        got = session.run(None, {k: v.numpy() for k, v in batch.items()})[0]
        with torch.inference_mode(), masked(model, mask):
            want = _outputs(model, batch).numpy()
        real = batch["attention_mask"].bool().numpy() if want.ndim == 3 else slice(None)
        assert got.shape == want.shape and np.abs(got[real] - want[real]).max() <= ONNX_TOLERANCE


def test_modernbert_hidden_states_at_padded_positions_are_undefined():
    """Why the ONNX check of a base model compares real tokens only (bug fixed here: `export --onnx` of a ModernBERT
    base model failed with "ONNX output differs from PyTorch by 3.9e-01"): a padded query in a local-attention layer
    has no unmasked key in its window, and PyTorch's own eager and sdpa attention then disagree by more than 0.1,
    while at real tokens they agree to 1e-5."""
    batch = tiny_batch(seed=5)
    with torch.inference_mode():
        eager = modernbert("base", attn_implementation="eager")(**batch).last_hidden_state
        sdpa = modernbert("base", attn_implementation="sdpa")(**batch).last_hidden_state
    real = batch["attention_mask"].bool()
    assert (eager - sdpa)[real].abs().max() <= TOLERANCE and (eager - sdpa)[~real].abs().max() > 0.1


def test_onnx_takes_token_types_where_the_model_has_them():
    """Bug fixed here: the ONNX graph took only input_ids and attention_mask, so a BERT/ELECTRA/DeBERTa-v2 model
    with 2 token types lost the second segment's embeddings (sentence pairs: outputs off by > 1e-3 from PyTorch fed
    the tokenizer's token_type_ids). One token type or none (RoBERTa, XLM-RoBERTa, DistilBERT, ModernBERT,
    DeBERTa-v3): no such input."""
    pair = ("input_ids", "attention_mask", "token_type_ids")
    assert onnx_input_names(tiny_model("bert").config) == pair
    assert onnx_input_names(tiny_model("electra").config) == pair
    assert onnx_input_names(deberta_config("v2")) == pair
    assert onnx_input_names(tiny_model("xlm-roberta").config) == pair  # the tiny config has transformers' default 2 types
    one_type = tiny_model("xlm-roberta", type_vocab_size=1).config  # as xlm-roberta-base and roberta-base
    for config in (one_type, tiny_model("distilbert").config, modernbert().config, deberta_config("v3")):
        assert onnx_input_names(config) == ("input_ids", "attention_mask")
    model = tiny_model("electra")
    batch = _pair_batch(model)
    with torch.inference_mode():
        without = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        assert (model(**batch).logits - without).abs().max() > 1e-3  # token types matter: the input is needed


# ---- super-network training and importance ordering ----

@pytest.fixture(scope="module")
def family_dirs(tmp_path_factory, glue_dir) -> dict[str, Path]:
    """Tiny random base models with tokenizers, one per new family (ModernBERT: 4 layers, the others 2)."""
    from syne_prune.data import load_task

    texts = [t for task in ("rte", "stsb") for column in load_task(task, glue_dir).train.texts for t in column]
    root = tmp_path_factory.mktemp("families")
    return {"modernbert": save_modernbert_dir(root / "modernbert", texts), "deberta-v2": save_deberta_dir(root / "deberta-v2", texts),
            **{arch: save_tiny_model_dir(arch, root / arch, texts) for arch in ("xlm-roberta", "electra")}}


def _training(model_dir, glue_dir, output, **kwargs) -> TrainingConfig:
    # --teacher auto with one fine-tune of the teacher (its grid is tested in tests/supernet/test_teacher_grid.py)
    values = dict(model=str(model_dir), task="rte", output=str(output), data_dir=str(glue_dir), search_space="medium",
                  strategy="sandwich", epochs=1, batch_size=8, max_train_examples=8, max_eval_examples=8, lr=1e-3,
                  max_length=32, importance_examples=8, teacher_learning_rates=None)
    return TrainingConfig(**{**values, **kwargs})


@pytest.mark.parametrize("family", FAMILIES)
def test_every_strategy_trains_the_supernetwork(family, family_dirs, glue_dir, tmp_path):
    """Each strategy, one step of 8 RTE pairs (``full``: STS-B, distillation on regression): more than half of the
    encoder's tensors change, the errors of the largest and smallest sub-networks are finite and in [0, 1] (RTE) or
    [0, 2] (STS-B: 1 - Pearson/Spearman), and the checkpoint reloads as the same family."""
    before = load_file(family_dirs[family] / "model.safetensors")
    for strategy in STRATEGIES:
        task = "stsb" if strategy == "full" else "rte"
        output = tmp_path / strategy
        metadata = train_supernet(_training(family_dirs[family], glue_dir, output, strategy=strategy, task=task), progress=False)
        after = load_file(output / "model.safetensors")
        pairs = [(k, a) for k in before for a in after if a.endswith("." + k) and "layer" in k]  # the encoder's tensors
        changed = [k for k, a in pairs if not torch.equal(before[k], after[a])]
        assert len(pairs) >= 16 and len(changed) > len(pairs) // 2, f"{strategy}: {len(changed)} of {len(pairs)} changed"
        assert metadata["strategy"] == strategy and metadata["task"] == task and metadata["model_type"] == family
        for name in ("largest", "smallest"):
            error = metadata["metrics"][name]["validation"]["error"]
            assert np.isfinite(error) and 0 <= error <= (2 if task == "stsb" else 1), (strategy, name, error)
    assert load_supernet(output).model.config.model_type == family


def _labelled(batch: dict[str, torch.Tensor], head: str) -> dict[str, torch.Tensor]:
    rows = batch["input_ids"].shape[0]
    if head == "regression":
        return {**batch, "labels": torch.randn(rows, generator=torch.Generator().manual_seed(1))}
    if head == "multiple_choice":
        return {**batch, "labels": torch.arange(rows) % batch["input_ids"].shape[1]}
    return {**batch, "labels": torch.arange(rows) % 3} if head == "classifier" else batch


def _plain_batch(head: str) -> dict[str, torch.Tensor]:
    return tiny_batch(choices=3 if head == "multiple_choice" else 0)


IMPORTANCE_MODELS = {  # name -> (build(head), batch(head))
    "modernbert": (lambda head: modernbert(head), _plain_batch),
    "modernbert-biased": (lambda head: modernbert(head, "biased"), _plain_batch),
    **{f"deberta-{v}": ((lambda v: lambda head: deberta_model(v, head))(v), (lambda v: lambda head: deberta_batch(v, head))(v))
       for v in ("v3", "v2", "head_size", "conv")},
    "xlm-roberta": (lambda head: tiny_model("xlm-roberta", head), _plain_batch),
    "electra": (lambda head: tiny_model("electra", head), _plain_batch),
}


@pytest.mark.parametrize("name", list(IMPORTANCE_MODELS))
def test_importance_ordering_preserves_the_function(name):
    """For every task head, fisher (not for the base model: it needs a loss) and magnitude ordering: outputs before
    and after the permutation agree to 1e-5, every layer's scores are in descending order, and units did move."""
    build, make_batch = IMPORTANCE_MODELS[name]
    for head in ("classifier", "regression", "multiple_choice", "base"):
        for method in ("magnitude",) if head == "base" else ("fisher", "magnitude"):
            model, batch = build(head), make_batch(head)
            with torch.inference_mode():
                before = _outputs(model, batch)
            record = order_by_importance(model, [_labelled(batch, head)], method)
            with torch.inference_mode():
                difference = (_outputs(model, batch) - before).abs().max().item()
            assert difference <= TOLERANCE, (head, method, difference)
            for scores in record["head_scores"] + record["neuron_scores"]:
                assert scores == sorted(scores, reverse=True), (head, method)
            identity = [list(range(len(order))) for order in record["neuron_order"]]
            assert record["neuron_order"] != identity, (head, method)  # 37! orders: identity means nothing was ordered


# ---- search on the local and pool backends, recovery ----

@pytest.fixture(scope="module")
def family_supernets(family_dirs, glue_dir, tmp_path_factory) -> dict[str, Path]:
    """ModernBERT and DeBERTa super-networks (medium space, sandwich, one epoch of 16 RTE pairs)."""
    root = tmp_path_factory.mktemp("family-supernets")
    for family in ("modernbert", "deberta-v2"):
        train_supernet(_training(family_dirs[family], glue_dir, root / family, max_train_examples=16, max_eval_examples=16),
                       progress=False)
    return {family: root / family for family in ("modernbert", "deberta-v2")}


def _ratios(supernet, row, space) -> tuple[float, float]:
    mask = space.to_mask({name: int(row[name]) for name in space.config_space})
    size, full = subnet_size(supernet.model, mask), subnet_size(supernet.model)
    return size.params / full.params, size.macs / full.macs


@pytest.mark.slow
@pytest.mark.parametrize("family", ["modernbert", "deberta-v2"])
def test_search_on_the_local_pool_and_sagemaker_backends(family, family_supernets, sagemaker, tmp_path):
    """Random search, one worker (two would start in parallel on the CI's 2 cores: slower): 3 trials (the largest,
    smallest and midpoint sub-networks) on the pool backend, the first 2 on the local one (a process per trial: ~6 s
    each) and on the SageMaker one (jobs against moto, each run here through AWS's training toolkit as the container
    would run it: the uploaded source's entry script with the super-network as an input channel); the local and SageMaker trials equal the
    pool's; every trial completed with a finite error in [0, 1]; the params and MACs ratios in trials.csv equal the
    counter's for the trial's mask (1e-9)."""
    from syne_prune.artifacts import read_trials
    from syne_prune.search import SearchConfig, WeightSharingSettings, run_search

    tables = {}
    for backend, max_trials in (("local", 2), ("sagemaker", 2), ("pool", 3)):
        extra = {"backend_settings": sagemaker_settings()} if backend == "sagemaker" else {}
        run_search(SearchConfig(trial_settings=WeightSharingSettings(str(family_supernets[family])), output=str(tmp_path / backend), scheduler="random",
                                backend=backend, n_workers=1, max_trials=max_trials, seed=5, eval_batch_size=8, **extra), progress=False)
        trials = read_trials(tmp_path / backend / "trials.csv").sort_values("trial_id").reset_index(drop=True)
        tables[backend] = trials[[c for c in trials.columns if c.startswith(("num_", "status", "error", "params", "macs"))]]
    pd.testing.assert_frame_equal(tables["pool"].iloc[:2], tables["local"], check_exact=True)
    pd.testing.assert_frame_equal(tables["pool"].iloc[:2], tables["sagemaker"], check_exact=True)
    assert len(sagemaker.session.client("sagemaker").list_training_jobs()["TrainingJobSummaries"]) == 2  # one job per trial
    trials = tables["pool"]
    assert len(trials) == 3 and (trials["status"] == "completed").all()
    assert np.isfinite(trials["error"]).all() and trials["error"].between(0, 1).all()
    supernet = load_supernet(family_supernets[family])
    space = get_search_space("medium", get_family(supernet.model.config).shape(supernet.model.config))
    for _, row in trials.iterrows():
        params, macs = _ratios(supernet, row, space)
        assert row["params"] == pytest.approx(params, abs=1e-9) and row["macs"] == pytest.approx(macs, abs=1e-9)
    assert trials["params"].min() < 0.7  # a pruned sub-network was scored, not only the full one


# medium space: a removed layer (0 heads, 0 neurons), fewer heads, a layer without its FFN
RECOVERY_CONFIGS = {
    "modernbert": {"num_heads_0": 4, "num_units_0": 20, "num_heads_1": 0, "num_units_1": 0, "num_heads_2": 2, "num_units_2": 0,
                   "num_heads_3": 3, "num_units_3": 9},
    "deberta-v2": {"num_heads_0": 3, "num_units_0": 20, "num_heads_1": 0, "num_units_1": 0},
}


@pytest.mark.parametrize("family", ["modernbert", "deberta-v2"])
def test_recovery_of_an_exported_subnetwork(family, family_supernets, tmp_path):
    """`syne-prune export` of a pruned sub-network, then one epoch of recovery: the export's parameter ratio is the
    counter's and its numel() the recorded count; the recovered export keeps that size, has finite errors in [0, 1]
    before and after, changed weights, and reloads to the in-memory recovered model's outputs (1e-5)."""
    from transformers import AutoModelForSequenceClassification

    from syne_prune.cli import main
    from syne_prune.recovery import recover

    supernet_dir = family_supernets[family]
    config = RECOVERY_CONFIGS[family]
    argv = ["export", "--model", str(supernet_dir), "--search-space", "medium", "--config", json.dumps(config),
            "--output", str(tmp_path / "export")]
    assert main(argv) == 0
    record = json.loads((tmp_path / "export" / "syne_prune.json").read_text())
    supernet = load_supernet(supernet_dir)
    space = get_search_space("medium", get_family(supernet.model.config).shape(supernet.model.config))
    params, macs = _ratios(supernet, config, space)
    assert record["params_ratio"] == pytest.approx(params, abs=1e-12) and record["macs_ratio"] == pytest.approx(macs, abs=1e-12)
    assert 0 < params < 1 and record["heads_per_layer"] == [config[f"num_heads_{i}"] for i in range(len(record["heads_per_layer"]))]
    exported = AutoModelForSequenceClassification.from_pretrained(tmp_path / "export").eval()
    assert sum(p.numel() for p in exported.parameters()) == record["params"]

    result = recover(tmp_path / "export", supernet_dir, 1, tmp_path / "recovered", lr=1e-3, batch_size=8, max_train_examples=16,
                     max_eval_examples=16, keep="last", progress=False)  # the trained weights, whatever validation says
    recovery = result.record["recovery"]
    for when in ("before", "after"):
        for split in ("validation", "test"):
            assert np.isfinite(recovery[when][split]["error"]) and 0 <= recovery[when][split]["error"] <= 1, (when, split)
    assert result.record["params"] == record["params"] == sum(p.numel() for p in result.model.parameters())
    before, after = load_file(tmp_path / "export" / "model.safetensors"), load_file(tmp_path / "recovered" / "model.safetensors")
    assert before.keys() == after.keys() and sum(not torch.equal(before[k], after[k]) for k in before) > len(before) // 2
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "recovered").eval()
    batch = {k: v.clamp(max=reloaded.config.vocab_size - 1) for k, v in tiny_batch().items()}
    with torch.inference_mode():
        assert (reloaded(**batch).logits - result.model(**batch).logits).abs().max() <= TOLERANCE
