"""Recovery: an export fine-tuned with distillation from its super-network is a new export with before/after metrics."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from helpers import CONFIG, FAST  # the exported sub-network's configuration, fast recovery settings
from safetensors.torch import load_file, save_file
from transformers import AutoModelForSequenceClassification, BertForSequenceClassification

from syne_prune.artifacts import SupernetDir
from syne_prune.cli import main
from syne_prune.data import encode, eval_batches, load_task
from syne_prune.errors import SynePruneError
from syne_prune.evaluation import evaluate
from syne_prune.models import load_tokenizer
from syne_prune.recovery import recover

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def recovered(exported, tmp_path_factory):
    """The export recovered for 2 epochs, uninterrupted, keeping the last epoch's weights."""
    supernet, export = exported
    return recover(export, supernet, 2, tmp_path_factory.mktemp("recovered") / "out", keep="last", **FAST)


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def _splits(record: dict, tokenizer):
    data = record["data"]
    split = load_task(record["task"], data["data_dir"], data["validation_fraction"], data["seed"], None, FAST["max_eval_examples"])
    return {name: eval_batches(encode(getattr(split, name), tokenizer, data["max_length"], False), tokenizer)
            for name in ("validation", "test")}, split.task


def test_recovery_writes_a_new_export_with_before_and_after_metrics(exported, recovered):
    supernet, export = exported
    record = json.loads((export / "syne_prune.json").read_text())
    assert record["task"] == "rte" and record["data"]["seed"] == 0 and record["data"]["validation_fraction"] == 0.3
    assert record["data"]["max_length"] == 48 and record["supernet"] == str(supernet.resolve())
    result, out = recovered, recovered.path
    assert out.is_dir() and not (out / ".resume").exists()
    assert sorted(p.name for p in export.iterdir()) == sorted(p.name for p in out.iterdir())  # the same format
    # the new export reloads with from_pretrained and computes what the in-memory recovered model computes
    reloaded = AutoModelForSequenceClassification.from_pretrained(out).eval()
    tokenizer = load_tokenizer(str(out))
    batch = tokenizer(["the film was good", "a dull and tedious story"], ["it was", "not good"], padding=True, return_tensors="pt")
    with torch.inference_mode():
        assert (reloaded(**batch).logits - result.model(**batch).logits).abs().max() <= TOLERANCE
    # recovery changed the weights (physically smaller: 2 of 4 heads x 8 = 16 query rows in layer 0)
    before_weights, after_weights = load_file(export / "model.safetensors"), load_file(out / "model.safetensors")
    assert before_weights.keys() == after_weights.keys()
    assert after_weights["bert.encoder.layer.0.attention.self.query.weight"].shape == (16, 32)
    changed = [k for k in before_weights if not torch.allclose(before_weights[k], after_weights[k], atol=1e-4)]
    assert len(changed) > len(before_weights) // 2, changed
    # syne_prune.json: the original record plus before/after; "before" is the original export scored by the same code
    new = json.loads((out / "syne_prune.json").read_text())
    assert new == json.loads(json.dumps(result.record))
    assert {k: v for k, v in new.items() if k not in ("recovery", "versions", "metric")} == \
        {k: v for k, v in record.items() if k != "versions"}
    recovery = new["recovery"]
    assert recovery["teacher"] == str(supernet.resolve()) and recovery["source_export"] == str(export.resolve())
    assert recovery["settings"]["epochs"] == 2 and recovery["settings"]["temperature"] == 2.0
    assert [h["epoch"] for h in recovery["history"]] == [1, 2] and recovery["num_train_examples"] == 24
    batches, task = _splits(record, tokenizer)
    original = AutoModelForSequenceClassification.from_pretrained(export).eval()
    for split in ("validation", "test"):
        assert recovery["before"][split] == evaluate(original, batches[split], task), split
        assert recovery["after"][split] == evaluate(reloaded, batches[split], task), split
        assert set(recovery["after"][split]) == {"accuracy", "error"}
    assert recovery["history"][-1]["validation"] == recovery["after"]["validation"]
    assert recovery["kept_epoch"] == 2 and recovery["last"] == recovery["after"] and recovery["settings"]["keep"] == "last"


def test_killed_recovery_resumes_to_the_uninterrupted_result(exported, recovered, tmp_path, monkeypatch):
    from syne_prune import training

    supernet, export = exported
    original_files = _files(export)
    real_save = training.TrainingLoop.save

    def save_then_kill(self, path, **extra):
        real_save(self, path, **extra)
        raise KeyboardInterrupt

    monkeypatch.setattr(training.TrainingLoop, "save", save_then_kill)
    with pytest.raises(KeyboardInterrupt):
        recover(export, supernet, 2, tmp_path / "killed", keep="last", **FAST)
    monkeypatch.setattr(training.TrainingLoop, "save", real_save)
    assert (tmp_path / "killed" / ".resume" / "state.pt").is_file() and not (tmp_path / "killed" / "syne_prune.json").exists()
    resumed = recover(export, supernet, 2, tmp_path / "killed", resume=True, keep="last", **FAST)
    a, b = load_file(recovered.path / "model.safetensors"), load_file(tmp_path / "killed" / "model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert resumed.record["recovery"]["after"] == recovered.record["recovery"]["after"]
    assert _files(export) == original_files  # recovery never writes into the export it starts from


def _scripted_validation(monkeypatch, errors: list[float]) -> list[float]:
    """Make recovery's validation scores say ``errors``, one per validation evaluation in order (test scores stay real);
    returns the list of errors handed out."""
    from syne_prune import recovery

    real, handed, validation_batches = recovery.evaluate, [], []

    def scripted(model, batches, task, max_batches=None):
        scores = real(model, batches, task, max_batches)
        if not validation_batches:  # recovery scores validation first
            validation_batches.append(batches)
        if batches is not validation_batches[0]:
            return scores
        error = errors[len(handed)]
        handed.append(error)
        return {task.metric_name: 1.0 - error, "error": error}

    monkeypatch.setattr(recovery, "evaluate", scripted)
    return handed


def test_recovery_keeps_the_export_when_no_epoch_improves_validation(exported, recovered, tmp_path, monkeypatch):
    supernet, export = exported
    # validation error: before 0.2, epochs 1 and 2: 0.5 and 0.4; validation is scored once per epoch (never again at the end)
    handed = _scripted_validation(monkeypatch, [0.2, 0.5, 0.4])
    result = recover(export, supernet, 2, tmp_path / "out", **FAST)
    assert handed == [0.2, 0.5, 0.4]
    recovery = result.record["recovery"]
    assert recovery["settings"]["keep"] == "best" and recovery["kept_epoch"] == 0
    assert [h["validation"]["error"] for h in recovery["history"]] == [0.5, 0.4] and recovery["after"]["validation"]["error"] == 0.2
    assert recovery["before"]["validation"]["error"] == 0.2 and recovery["last"]["validation"]["error"] == 0.4
    # the written weights are the export's, bit for bit, and score what it scored on test
    original, written = load_file(export / "model.safetensors"), load_file(tmp_path / "out" / "model.safetensors")
    assert original.keys() == written.keys() and all(torch.equal(original[k], written[k]) for k in original)
    assert recovery["after"]["test"] == recovery["before"]["test"]
    # "last" is what keep="last" writes: the same training, so the same test score as the uninterrupted keep-last run
    assert recovery["last"]["test"] == recovered.record["recovery"]["after"]["test"]
    assert recovery["last"]["test"] != recovery["after"]["test"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in export.iterdir())  # no .resume left
    with pytest.raises(SynePruneError, match="^--keep must be one of best, last, got 'worst'$"):
        recover(export, supernet, 1, tmp_path / "other", keep="worst", **FAST)
    assert not (tmp_path / "other").exists()


def test_killed_recovery_resumes_and_keeps_the_best_epoch(exported, recovered, tmp_path, monkeypatch):
    """Epoch 1 is best on validation; recovery is killed after it and resumed: the written weights are epoch 1's."""
    from syne_prune import training

    supernet, export = exported
    real_save = training.TrainingLoop.save

    def save_then_kill(self, path, **extra):
        real_save(self, path, **extra)
        raise KeyboardInterrupt

    _scripted_validation(monkeypatch, [0.5, 0.2])  # before 0.5, epoch 1 0.2
    monkeypatch.setattr(training.TrainingLoop, "save", save_then_kill)
    with pytest.raises(KeyboardInterrupt):
        recover(export, supernet, 2, tmp_path / "killed", **FAST)
    monkeypatch.setattr(training.TrainingLoop, "save", real_save)
    resume_dir = tmp_path / "killed" / ".resume"
    # killed right after saving the state (before the file of epoch 0's weights was removed): both kept files are there
    assert sorted(p.name for p in resume_dir.iterdir()) == ["kept-0.pt", "kept-1.pt", "settings.json", "state.pt"]
    epoch_1 = torch.load(resume_dir / "state.pt", weights_only=False)["model"]
    handed = _scripted_validation(monkeypatch, [0.5, 0.4])  # resumed: before, epoch 2 (epoch 1's is in the resume state)
    result = recover(export, supernet, 2, tmp_path / "killed", resume=True, **FAST)
    assert handed == [0.5, 0.4]
    recovery = result.record["recovery"]
    assert recovery["kept_epoch"] == 1 and [h["validation"]["error"] for h in recovery["history"]] == [0.2, 0.4]
    assert recovery["after"]["validation"]["error"] == 0.2 and recovery["last"]["validation"]["error"] == 0.4
    written = load_file(tmp_path / "killed" / "model.safetensors")
    assert all(torch.equal(written[k], epoch_1[k]) for k in written)
    last = load_file(recovered.path / "model.safetensors")  # the uninterrupted run's epoch 2 is another model
    assert any(not torch.allclose(written[k], last[k], atol=1e-4) for k in written)
    assert not resume_dir.exists()


@pytest.mark.slow
def test_export_with_recover_epochs_writes_the_recovered_model(exported, tmp_path, capsys):
    import onnxruntime

    supernet, _ = exported
    out = tmp_path / "out"
    argv = ["export", "--model", str(supernet), "--search-space", "medium", "--config", CONFIG, "--output", str(out),
            "--recover-epochs", "1", "--onnx"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "recovered in 1 epoch(s) of distillation" in printed and f"exported to {out}" in printed
    record = json.loads((out / "syne_prune.json").read_text())
    assert record["recovery"]["teacher"] == str(supernet.resolve()) and record["recovery"]["source_export"] is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # the temporary unrecovered export is gone
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    session = onnxruntime.InferenceSession(str(out / "model.onnx"))  # the ONNX file is the recovered model
    batch = load_tokenizer(str(out))(["a good film", "the plot"], ["was not clever at all", "bad"], padding=True, return_tensors="np")
    assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask", "token_type_ids"]  # BERT: sentence pairs
    got = session.run(None, dict(batch))[0]
    with torch.inference_mode():
        want = model(**{k: torch.from_numpy(v) for k, v in batch.items()}).logits
    assert abs(got - want.numpy()).max() <= 1e-4


def _bad_teachers(root: Path, supernet: Path, tiny_model_dirs) -> dict[str, tuple[Path, str]]:
    other_task = root / "other_task"
    shutil.copytree(supernet, other_task)
    meta = json.loads((other_task / "supernet.json").read_text())
    (other_task / "supernet.json").write_text(json.dumps({**meta, "task": "mrpc"}))
    config = BertForSequenceClassification.from_pretrained(supernet).config
    config.num_labels = 3
    BertForSequenceClassification(config).save_pretrained(root / "three_labels")
    config.num_labels, config.vocab_size = 2, config.vocab_size + 7
    BertForSequenceClassification(config).save_pretrained(root / "other_vocab")
    return {
        "architecture": (tiny_model_dirs["roberta"], "is a roberta model, the export a bert one"),
        "vocabulary": (root / "other_vocab", f"has a vocabulary of {config.vocab_size} tokens"),
        "labels": (root / "three_labels", "with 3 label(s), the export AutoModelForSequenceClassification with 2"),
        "task": (other_task, "was trained on task 'mrpc', the export on 'rte'"),
    }


def test_bad_recovery_input_is_one_line_exit_2_and_overwrites_nothing(exported, tiny_model_dirs, tmp_path, capsys):
    supernet, export = exported
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("precious")
    not_pruned = tmp_path / "gpt2"
    shutil.copytree(export, not_pruned)
    config = json.loads((not_pruned / "config.json").read_text())
    (not_pruned / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 1, "n_embd": 8, "n_head": 2}))
    assert config["model_type"] in ("bert", "syne_prune_bert")

    nan_export = tmp_path / "nan-export"
    shutil.copytree(export, nan_export)
    weights = load_file(nan_export / "model.safetensors")
    name = next(k for k, v in weights.items() if v.is_floating_point())
    weights[name][0] = float("nan")
    save_file(weights, nan_export / "model.safetensors")

    def args(*extra, model=export, teacher=supernet, epochs="1", output=tmp_path / "out"):
        return ["recover", "--model", str(model), "--teacher", str(teacher), "--epochs", epochs, "--output", str(output), *extra]

    cases = [
        (args(model=tiny_model_dirs["bert"]), "is not a syne-prune export (no syne_prune.json)"),
        (args(model=not_pruned), "is a 'gpt2' model, not a (pruned) bert/roberta/distilbert/xlm-roberta/electra/deberta-v2/modernbert model"),
        (args(epochs="0"), "--epochs must be a positive integer or 'auto', got 0"),
        (args(epochs="-2"), "--epochs must be a positive integer or 'auto', got -2"),
        (args(output=taken), "already exists; pass --resume to continue it, --overwrite to replace it"),
        (args(output=export), "--output is the --model directory"),
        (args("--overwrite", output=export), "--output is the --model directory"),
        (args("--overwrite", output=supernet), "--output is the --teacher directory"),
        (args(model=export, teacher=tmp_path / "missing"), "is not a model directory"),
        (args("--task", "mrpc"), "--task mrpc differs from the export's task 'rte'"),
        (args("--lr", "0"), "--lr must be positive"),
        (args("--keep", "worst"), "argument --keep: unknown keep 'worst'; choose one of best, last"),
        # settings the model cannot honour: the tiny BERT has 160 positions
        (args("--max-length", "600"), "--max-length 600 is more than the 160 token positions of export"),
        (args(model=nan_export), "has non-finite weights"),  # non-finite weights: never trained on silently
    ]
    cases += [(args(teacher=teacher), message) for teacher, message in _bad_teachers(tmp_path, supernet, tiny_model_dirs).values()]
    watched = {path: _files(path) for path in (export, supernet, taken)}
    capsys.readouterr()
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("error: ")]  # progress bars may precede it
        assert "Traceback" not in err and len(errors) == 1 and message in errors[0], (argv, err)
        assert not (tmp_path / "out").exists(), argv
        assert {path: _files(path) for path in watched} == watched and (taken / "keep.txt").read_text() == "precious"
    assert main(["export", "--model", str(supernet), "--search-space", "medium", "--config", CONFIG, "--output",
                 str(tmp_path / "o"), "--teacher", str(supernet)]) == 2
    assert "--teacher goes with --recover-epochs N" in capsys.readouterr().err
    assert main(["export", "--model", str(supernet), "--search-space", "medium", "--config", CONFIG, "--output",
                 str(tmp_path / "o"), "--recover-epochs", "0"]) == 2
    assert "--recover-epochs must be a positive integer or 'auto', got 0" in capsys.readouterr().err
    assert main(["export", "--model", str(tiny_model_dirs["bert"]), "--search-space", "medium", "--config", CONFIG, "--output",
                 str(tmp_path / "o"), "--recover-epochs", "1"]) == 2
    assert "is not a super-network (no supernet.json) to distill from; give --teacher" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_export_recovers_from_the_supernetworks_own_teacher_when_it_has_one(tmp_path):
    """export --recover-epochs without --teacher: the fixed teacher recorded in supernet.json (if still there), else the
    super-network itself."""
    import argparse

    from syne_prune.cli import recovery_teacher

    supernet, teacher = tmp_path / "supernet", tmp_path / "supernet" / "teacher"
    teacher.mkdir(parents=True)
    args = argparse.Namespace(recover_epochs=1, teacher=None, search_dir=None, model=str(supernet))
    SupernetDir(supernet).write({"teacher": {"source": "auto", "path": str(teacher)}})
    assert recovery_teacher(args) == str(teacher)
    shutil.rmtree(teacher)  # moved away: fall back to the super-network
    assert recovery_teacher(args) == str(supernet)
    SupernetDir(supernet).write({"teacher": None})
    assert recovery_teacher(args) == str(supernet)
