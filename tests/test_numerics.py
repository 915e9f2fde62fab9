"""No NaN or infinity reaches a checkpoint, a metric, a trial result, the Pareto set, a hypervolume or the
ONNX check unnoticed: each is a one-line SynePruneError (CLI exit 2) or a failed trial with its reason."""
from __future__ import annotations

import math
import shutil
import types
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import tiny_model
from helpers import fails
from safetensors.torch import load_file, save_file
from transformers import AutoModel, AutoTokenizer

from syne_prune import EncoderShape, SynePruneError, artifacts, get_search_space
from syne_prune.artifacts import SupernetDir
from syne_prune.data import get_metric, get_task, load_task
from syne_prune.evaluation import predict
from syne_prune.export import onnx_difference
from syne_prune.models import load_task_model
from syne_prune.numerics import require_finite, require_finite_result
from syne_prune.pareto import hypervolume, non_dominated, pareto_set
from syne_prune.search import WeightSharingSettings
from syne_prune.search import results as R
from syne_prune.supernet import TrainingConfig, load_supernet, train_supernet, verify_checkpoint


def _copy_model(source: Path, target: Path, change=None, dtype=None) -> Path:
    """A copy of a tiny model directory with its weights cast to ``dtype`` and/or changed by ``change(state)``."""
    model = AutoModel.from_pretrained(source)
    if dtype is not None:
        model = model.to(dtype)
    if change is not None:
        with torch.no_grad():
            change(model.state_dict())
    model.save_pretrained(target)
    AutoTokenizer.from_pretrained(source).save_pretrained(target)
    return target


def _stsb(tmp_path: Path, scores: dict[int, str]) -> Path:
    """STS-B files of 20 rows (score 2.5), with the data rows in ``scores`` (0-based) given other score text."""
    folder = tmp_path / "data" / "STS-B"
    folder.mkdir(parents=True)
    rows = [f"a man plays a guitar {i}\ta man is playing music {i}\t{scores.get(i, '2.5')}\n" for i in range(20)]
    for name in ("train.tsv", "dev.tsv"):
        (folder / name).write_text("sentence1\tsentence2\tscore\n" + "".join(rows))
    return folder.parent


def _config(model_dir, data_dir, output, **kwargs) -> TrainingConfig:
    values = dict(teacher=None, model=str(model_dir), task="rte", output=str(output), data_dir=str(data_dir), search_space="small",
                  strategy="standard", epochs=1, batch_size=8, max_train_examples=16, max_eval_examples=8, lr=1e-3, max_length=32)
    return TrainingConfig(**{**values, **kwargs})


# ---- dtype: a float16 checkpoint trains in float32 ----


def test_float16_model_trains_in_float32_with_finite_weights(tiny_model_dirs, glue_dir, tmp_path):
    half = _copy_model(tiny_model_dirs["bert"], tmp_path / "half", dtype=torch.float16)
    assert {t.dtype for t in load_file(half / "model.safetensors").values()} == {torch.float16}
    assert {p.dtype for p in load_task_model(str(half), get_task("rte")).parameters()} == {torch.float32}
    metadata = train_supernet(_config(half, glue_dir, tmp_path / "out"), progress=False)
    saved = load_file(tmp_path / "out" / "model.safetensors")
    assert {t.dtype for t in saved.values()} == {torch.float32}
    assert [k for k, t in saved.items() if not torch.isfinite(t).all()] == []  # 0 of len(saved) tensors non-finite
    assert math.isfinite(metadata["history"][0]["train_loss"])
    assert all(math.isfinite(metadata["metrics"][n][s]["error"]) for n in ("largest", "smallest") for s in ("validation", "test"))


# ---- non-finite weights are refused where loaded or written ----


def _poison(state):
    next(t for k, t in state.items() if k.endswith("attention.self.query.weight"))[0, 0] = float("nan")


def test_model_with_a_nan_weight_is_refused_before_any_output(tiny_model_dirs, glue_dir, tmp_path, capsys):
    bad = _copy_model(tiny_model_dirs["bert"], tmp_path / "bad", change=_poison)
    with pytest.raises(SynePruneError, match=r"has non-finite weights in 1 of \d+ tensors \(e.g. .*attention.self.query.weight\)"):
        load_task_model(str(bad), get_task("rte"))
    out = tmp_path / "out"
    fails(capsys, ["train-supernet", "--model", str(bad), "--task", "rte", "--data-dir", str(glue_dir), "--epochs", "1",
                    "--output", str(out)], "has non-finite weights in 1 of")
    assert not out.exists()
    export = tmp_path / "export"
    fails(capsys, ["export", "--model", str(bad), "--search-space", "small", "--config", '{"num_layers": 1, "num_heads": 2, '
                    '"num_units": 10}', "--onnx", "--output", str(export)], "has non-finite weights in 1 of")
    assert not export.exists()


def _poisoned_supernet(supernets, tmp_path: Path) -> Path:
    """A copy of the test run's BERT super-network with one NaN weight and a manifest that matches it."""
    path = tmp_path / "supernet"
    shutil.copytree(supernets["bert"], path)
    weights = load_file(path / "model.safetensors")
    _poison(weights)
    save_file(weights, path / "model.safetensors", metadata={"format": "pt"})
    metadata = SupernetDir(path).read()
    SupernetDir(path).write({k: v for k, v in metadata.items() if k not in ("format_version", "manifest")})
    return path


def test_supernet_with_a_nan_weight_is_refused_for_search_and_export(supernets, tmp_path, capsys):
    path = _poisoned_supernet(supernets, tmp_path)
    message = f"super-network '{path}' has non-finite weights in 1 of"
    with pytest.raises(SynePruneError, match="non-finite weights in 1 of"):
        verify_checkpoint(path)  # the manifest matches: only the finiteness check catches it
    with pytest.raises(SynePruneError, match="non-finite weights in 1 of"):
        load_supernet(path)
    out = tmp_path / "search"
    fails(capsys, ["search", "--supernet", str(path), "--max-trials", "1", "--output", str(out)], message)
    assert not out.exists()


# ---- losses ----


def test_infinite_training_loss_stops_both_training_loops(tiny_model_dirs, tmp_path, capsys):
    """Scores of 3e38 are finite float32 numbers, but their squared error overflows: loss inf at the first step."""
    data = _stsb(tmp_path, {i: "3e38" for i in range(20)})
    out = tmp_path / "out"
    line = fails(capsys, ["train-supernet", "--model", str(tiny_model_dirs["bert"]), "--task", "stsb", "--data-dir", str(data),
                           "--strategy", "standard", "--epochs", "1", "--batch-size", "8", "--search-space", "small",
                           "--output", str(out)], "training loss (epoch 1, step 1 of 2) is inf; training stopped")
    assert line == ("error: training loss (epoch 1, step 1 of 2) is inf; training stopped, nothing of this epoch saved; lower --lr "
                    "(now 8e-05), or check the data and the model's weights for extreme values (syne-prune trains in float32)")
    assert not (out / "model.safetensors").exists() and not (out / "supernet.json").exists()

    from syne_prune.search.finetune import FineTuneSettings, fine_tune

    settings = FineTuneSettings(model=str(tiny_model_dirs["bert"]), task="stsb", data_dir=str(data), epochs=1, batch_size=8,
                                max_length=32, search_space="small")
    reports = []
    with pytest.raises(SynePruneError, match=r"^training loss \(epoch 1, step 1 of 2\) is inf"):
        fine_tune(settings, {"num_layers": 1, "num_heads": 2, "num_units": 10}, tmp_path / "ckpt", reports.append)
    assert reports == [] and not (tmp_path / "ckpt").exists()


def test_require_finite_values():
    assert require_finite(torch.tensor(0.25), "loss") == 0.25
    assert require_finite(np.float32(2.0), "loss") == 2.0
    for bad in (float("nan"), float("inf"), -float("inf"), torch.tensor(float("nan"))):
        with pytest.raises(SynePruneError, match="^loss is (nan|inf|-inf); lower --lr"):
            require_finite(bad, "loss")


# ---- data ----


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "NaN"])
def test_non_finite_score_in_a_file_names_file_and_line(tiny_model_dirs, tmp_path, capsys, text):
    data = _stsb(tmp_path, {2: text})
    path = data / "STS-B" / "train.tsv"
    value = float(text)
    with pytest.raises(SynePruneError) as error:
        load_task("stsb", data)
    assert str(error.value) == f"{path} line 4 has a non-finite score {value} (1 such row(s)); fix or remove those rows"
    out = tmp_path / "out"
    fails(capsys, ["train-supernet", "--model", str(tiny_model_dirs["bert"]), "--task", "stsb", "--data-dir", str(data), "--output", str(out)],
           f"{path} line 4 has a non-finite score")
    assert not out.exists()


def test_finite_scores_still_load(tmp_path):
    data = load_task("stsb", _stsb(tmp_path, {0: "5.0", 1: "0"}))
    assert sorted(set(np.concatenate([data.train.labels, data.validation.labels]).tolist())) == [0.0, 2.5, 5.0]


# ---- metrics and model outputs ----


@pytest.mark.parametrize("head", ["classifier", "regression"])
def test_nan_model_output_is_an_error_not_a_score(head):
    nan = torch.tensor([[float("nan"), 0.0, 1.0]])
    assert int(nan.argmax(-1)) == 0  # unchecked, a NaN logit is an answer like any other
    model = tiny_model("bert", head)
    with torch.no_grad():
        model.classifier.weight[0, 0] = float("nan")
    batches = [{"input_ids": torch.tensor([[2, 7, 9, 3]]), "attention_mask": torch.ones(1, 4, dtype=torch.long),
                "labels": torch.tensor([1.0 if head == "regression" else 1])}]
    with pytest.raises(SynePruneError, match=r"output \(logits\) holds NaN or inf in evaluation batch 1"):
        predict(model, batches, head == "regression")


class _PlantedLogits(torch.nn.Module):
    """Logits [batch, 3] = the first three input ids (as floats); an input id of -1 makes that batch's logits NaN."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(()))

    def forward(self, input_ids, attention_mask=None):
        logits = input_ids[:, :3].float() * self.weight
        return types.SimpleNamespace(logits=torch.where(input_ids[:, :3] < 0, float("nan"), logits))


def test_predict_names_the_first_non_finite_batch_and_otherwise_answers_every_batch():
    batches = [{"input_ids": torch.tensor([[1, 5, 2], [9, 0, 0]]), "labels": torch.tensor([1, 0])},
               {"input_ids": torch.tensor([[0, 0, 4]]), "labels": torch.tensor([2])}]
    predictions, labels = predict(_PlantedLogits(), batches, "classification")
    assert predictions.tolist() == [1, 0, 2] and labels.tolist() == [1, 0, 2]
    assert predict(_PlantedLogits(), batches, "classification", max_batches=1)[0].tolist() == [1, 0]
    planted = [*batches, {"input_ids": torch.tensor([[-1, 0, 0]]), "labels": torch.tensor([0])}, *batches]
    with pytest.raises(SynePruneError, match=r"holds NaN or inf in evaluation batch 3;"):
        predict(_PlantedLogits(), planted, "classification")


def test_spearman_refuses_nan_but_scores_constant_predictions_zero():
    spearman = get_metric("spearman").function
    labels = np.array([1.0, 2.0, 3.0])
    assert spearman(labels, np.array([1.0, 3.0, 2.0])) == pytest.approx(0.5)
    assert spearman(labels, np.array([2.0, 2.0, 2.0])) == 0.0
    with pytest.raises(SynePruneError, match="spearman correlation of non-finite"):
        spearman(labels, np.array([1.0, float("nan"), 2.0]))


@pytest.mark.parametrize("name", ["spearman", "pearson"])
def test_a_constant_answer_spread_by_rounding_has_no_correlation(name):
    """A sub-network without attention answers every sentence alike; batches of different lengths spread that answer by
    one float32 unit in the last place (6e-8 at 0.7958), in step with the labels here: still no correlation."""
    correlation = get_metric(name).function
    labels = np.arange(8, dtype=np.float64)
    answer = np.float32(0.7957549)
    rounded = np.array([answer] * 6 + [np.nextafter(answer, np.float32(1))] * 2, dtype=np.float32)
    assert np.ptp(rounded) == pytest.approx(5.96e-8, rel=1e-2)
    assert correlation(labels, rounded) == 0.0  # scipy, reading the rounding as signal, gives 0.76 for both
    learned = rounded + np.float32(1e-4) * np.arange(8, dtype=np.float32)  # a spread 2,000 times the rounding: real
    assert correlation(labels, learned) == pytest.approx(1.0)
    assert correlation(labels, np.zeros(8)) == 0.0


def test_trial_with_nan_outputs_fails_without_reporting(supernets):
    from syne_prune.search.trial import Evaluator, TrialSettings

    supernet = load_supernet(supernets["bert"])
    with torch.no_grad():
        supernet.model.classifier.weight[0, 0] = float("nan")
    evaluator = Evaluator(TrialSettings(supernet=str(supernets["bert"]), max_eval_examples=8), supernet=supernet)
    reports = []
    with pytest.raises(SynePruneError, match="holds NaN or inf"):
        evaluator.evaluate(evaluator.space.largest(), reports.append)
    assert reports == []
    assert require_finite_result({"error": 0.25, "params": 0.5}) == {"error": 0.25, "params": 0.5}
    with pytest.raises(SynePruneError, match=r"the trial's result is not finite \(error=nan\)"):
        require_finite_result({"error": float("nan"), "params": 0.5, "fidelity": 1})


# ---- ONNX check ----


def test_onnx_check_fails_on_nan():
    want = np.array([[0.5, -1.0]], dtype=np.float32)
    assert onnx_difference(want + 1e-6, want) == pytest.approx(1e-6, abs=1e-7)
    nan = np.array([[float("nan"), -1.0]], dtype=np.float32)
    assert not (abs(nan - want).max() > 1e-4)  # the old check `difference > tolerance` passed this
    with pytest.raises(SynePruneError, match=r"ONNX output differs from PyTorch by nan \(not <= 0.0001\)"):
        onnx_difference(nan, want)
    with pytest.raises(SynePruneError, match="PyTorch output is NaN or inf"):
        onnx_difference(nan, nan)


def test_onnx_export_of_an_overflowing_model_is_an_error(tmp_path):
    """Finite weights, infinite logits: the classifier's weights near the float32 maximum overflow."""
    from syne_prune.export import export_onnx

    model = tiny_model("bert", "classifier")
    with torch.no_grad():
        model.classifier.weight.fill_(3e38)
    with pytest.raises(SynePruneError, match="PyTorch output is NaN or inf on the ONNX check input"):
        export_onnx(model, tmp_path / "model.onnx")


# ---- search results: the Pareto set and the hypervolume ----


def test_non_finite_rows_never_enter_the_front():
    points = np.array([[0.5, 0.5], [float("nan"), 0.1], [-float("inf"), 0.9], [0.4, float("inf")], [0.6, 0.6]])
    assert non_dominated(points).tolist() == [True, False, False, False, False]  # -inf dominates nothing either


def test_nan_trial_is_not_in_the_pareto_set_or_the_hypervolume():
    trials = pd.DataFrame({"trial_id": [0, 1, 2, 3], "status": ["completed"] * 4, "fidelity": [1] * 4,
                           "error": [0.3, float("nan"), 0.2, -float("inf")], "params": [0.6, 0.1, 0.8, 0.5]})
    front = pareto_set(trials, ["error", "params"], 1)
    assert sorted(front["trial_id"]) == [0, 2]
    # (1 - 0.3)(1 - 0.6) + (0.3 - 0.2)(1 - 0.8) = 0.28 + 0.02
    assert hypervolume(front[["error", "params"]].to_numpy(float)) == pytest.approx(0.30)
    assert hypervolume(trials[["error", "params"]].to_numpy(float)) == pytest.approx(0.30)


def test_nan_report_is_a_failed_trial_in_the_ledger_and_hidden_from_the_scheduler(tmp_path):
    from syne_tune.backend.trial_status import Trial
    from syne_tune.optimizer.scheduler import SchedulerDecision, TrialScheduler

    from syne_prune.search import NoRepeatScheduler, SearchConfig
    from syne_prune.search.callbacks import LedgerCallback

    class Recording(TrialScheduler):  # records what the wrapped (real) scheduler is told
        def __init__(self):
            super().__init__(random_seed=0)
            self.told = []

        def suggest(self):
            return None

        def on_trial_result(self, trial, result):
            self.told.append(("result", result["error"]))
            return SchedulerDecision.CONTINUE

        def on_trial_complete(self, trial, result):
            self.told.append(("complete", result["error"]))

        def on_trial_error(self, trial):
            self.told.append(("error", trial.trial_id))

        def metric_names(self):
            return ["error", "params"]

        def metric_mode(self):
            return "min"

    inner = Recording()
    space = get_search_space("small", EncoderShape(num_layers=2, num_heads=2, num_neurons=3, hidden_size=8))
    wrapped = NoRepeatScheduler(inner, space=space, seen=set(), budget=None)
    trial = Trial(trial_id=0, config={"num_layers": 1}, creation_time=datetime.now())
    nan = {"error": float("nan"), "params": 0.5, "fidelity": 1}
    assert wrapped.on_trial_result(trial, nan) == SchedulerDecision.STOP
    wrapped.on_trial_complete(trial, nan)
    assert wrapped.on_trial_result(trial, {"error": 0.25, "params": 0.5}) == SchedulerDecision.CONTINUE
    assert inner.told == [("error", 0), ("result", 0.25)]

    config = SearchConfig(trial_settings=WeightSharingSettings("unused"), output=str(tmp_path), max_trials=1, scheduler="random")
    ledger = artifacts.TrialLedger(tmp_path / artifacts.TRIALS_FILE, ["trial_id", "status", "num_layers", "error", "params", "fidelity",
                                                      "failure_reason"])
    (tmp_path / "part-0").mkdir()
    clock = R.PartClock(tmp_path / "part-0", 0, {})  # its thread not started: the callback only beats it
    LedgerCallback(ledger, None, ["num_layers"], config, 0, None, part=0, clock=clock).on_trial_complete(trial, nan)
    row = ledger.read().iloc[0]
    assert (row["status"], row["failure_reason"]) == ("failed", "non-finite objective(s) error=nan")
    assert pareto_set(ledger.read(), ["error", "params"], 1).empty
