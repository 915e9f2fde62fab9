from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from conftest import tiny_model
from safetensors.torch import load_file

from syne_prune import InPlaceMask, SynePruneError, get_family, get_search_space
from syne_prune.supernet import STRATEGIES, TrainingConfig, distillation_loss, get_strategy, load_supernet, train_supernet, verify_checkpoint
from syne_prune.supernet import train as train_module


def _config(model_dir, glue_dir, output, **kwargs):
    values = dict(teacher=None, model=str(model_dir), task="rte", output=str(output), data_dir=str(glue_dir), search_space="medium",
                  epochs=1, batch_size=8, max_train_examples=24, max_eval_examples=16, lr=1e-3, max_length=48)
    return TrainingConfig(**{**values, **kwargs})


@pytest.mark.parametrize("arch", ["bert", "roberta"])
@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_every_strategy_trains_and_changes_the_weights(tiny_model_dirs, glue_dir, tmp_path, arch, strategy):
    task = "stsb" if strategy == "full" and arch == "roberta" else "rte"  # distillation on regression too
    metadata = train_supernet(_config(tiny_model_dirs[arch], glue_dir, tmp_path / "out", strategy=strategy, task=task), progress=False)
    before = load_file(tiny_model_dirs[arch] / "model.safetensors")
    after = load_file(tmp_path / "out" / "model.safetensors")
    prefix = f"{arch}."
    shared = [k for k in before if prefix + k in after]  # RoBERTa's classifier has no pooler
    changed = [k for k in shared if not torch.equal(before[k], after[prefix + k])]
    assert len(shared) > 20 and len(changed) > len(shared) // 2, f"{strategy}: only {len(changed)} of {len(shared)} tensors changed"
    assert metadata["strategy"] == strategy and metadata["task"] == task
    for name in ("largest", "smallest"):
        for split in ("validation", "test"):
            assert 0 <= metadata["metrics"][name][split]["error"] <= 2
    assert set(metadata["manifest"]) >= {"model.safetensors", "config.json"}
    assert not (tmp_path / "out" / ".resume").exists()


class RecordingMasker:
    """Stands in for InPlaceMask and records which sub-network each forward pass computed."""

    def __init__(self, masker: InPlaceMask):
        self.masker, self.active, self.forwards = masker, None, []
        masker.model.register_forward_pre_hook(lambda module, args: self.forwards.append(self.active))

    def set(self, mask):
        self.active = mask
        self.masker.set(mask)


@pytest.mark.parametrize("name", ["sandwich", "full"])
def test_sandwich_and_full_visit_largest_and_smallest_every_step(name):
    model = tiny_model("bert", "classifier").train()
    space = get_search_space("medium", get_family(model.config).shape(model.config))
    recorder = RecordingMasker(InPlaceMask(model))
    strategy = get_strategy(name)(space, recorder, np.random.RandomState(0), False, total_steps=3, num_random_subnets=2)
    smallest = space.to_mask(space.smallest())
    batch = {"input_ids": torch.randint(5, 100, (4, 9)), "attention_mask": torch.ones(4, 9, dtype=torch.long), "labels": torch.tensor([0, 1, 2, 0])}
    for step in range(3):
        recorder.forwards.clear()
        loss = strategy(model, batch, step)
        # a detached scalar on the model's device: the training loop reads it without a synchronisation per step
        assert isinstance(loss, torch.Tensor) and loss.dim() == 0 and not loss.requires_grad and torch.isfinite(loss) and loss > 0
        assert len(recorder.forwards) == 4  # largest, 2 random, smallest
        assert recorder.forwards[0] is None  # the full (largest) network first: it is the teacher in `full`
        assert recorder.forwards[-1] == smallest
        assert all(m is not None and m != smallest for m in recorder.forwards[1:3])
        assert recorder.active is None  # left on the full network


def test_random_linear_moves_from_full_to_random():
    model = tiny_model("bert", "classifier").train()
    space = get_search_space("small", get_family(model.config).shape(model.config))
    strategy = get_strategy("random_linear")(space, InPlaceMask(model), np.random.RandomState(0), False, total_steps=101)
    assert strategy.probability_random(0) == 0 and strategy.probability_random(50) == 0.5 and strategy.probability_random(100) == 1


def test_distillation_loss_equals_a_hand_computation():
    student = torch.tensor([[1.0, -0.5, 0.2], [0.3, 0.8, -1.0]])
    teacher = torch.tensor([[2.0, 0.0, -1.0], [-0.5, 1.5, 0.5]])
    labels = torch.tensor([0, 2])
    T = 2.0

    def softmax(row):
        e = [math.exp(v) for v in row]
        return [v / sum(e) for v in e]

    soft, hard = 0.0, 0.0
    for s, t, y in zip(student.tolist(), teacher.tolist(), labels.tolist()):
        p_teacher = softmax([v / T for v in t])
        log_p_student = [math.log(p) for p in softmax([v / T for v in s])]
        soft += -sum(pt * lp for pt, lp in zip(p_teacher, log_p_student))
        hard += -math.log(softmax(s)[y])
    expected = T**2 * soft / 2 + hard / 2
    assert distillation_loss(student, teacher, labels, temperature=T).item() == pytest.approx(expected, rel=1e-6)
    scores, targets, gold = torch.tensor([1.0, 2.0, 3.5]), torch.tensor([1.5, 2.0, 2.5]), torch.tensor([1.0, 3.0, 3.0])
    # regression: MSE to the teacher plus MSE to the labels (never without the labels)
    assert distillation_loss(scores, targets, gold, is_regression=True).item() == pytest.approx((0.25 + 0 + 1) / 3 + (0 + 1 + 0.25) / 3)


def test_manifest_detects_a_flipped_byte(tiny_model_dirs, glue_dir, tmp_path):
    out = tmp_path / "out"
    train_supernet(_config(tiny_model_dirs["bert"], glue_dir, out, strategy="standard"), progress=False)
    verify_checkpoint(out, task="rte", search_space="medium")
    supernet = load_supernet(out, task="rte")
    assert supernet.metadata["search_space"] == "medium" and supernet.tokenizer is not None
    with pytest.raises(SynePruneError, match="trained with task 'rte', not 'mrpc'"):
        verify_checkpoint(out, task="mrpc")
    with pytest.raises(SynePruneError, match="trained with search_space 'medium', not 'large'"):
        verify_checkpoint(out, search_space="large")
    weights = out / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(SynePruneError, match="model.safetensors does not match its sha256"):
        verify_checkpoint(out)
    (out / "supernet.json").unlink()
    with pytest.raises(SynePruneError, match="not a complete super-network checkpoint"):
        verify_checkpoint(out)


@pytest.mark.slow
def test_resume_continues_from_the_last_finished_epoch(tiny_model_dirs, glue_dir, tmp_path, monkeypatch):
    config = dict(strategy="sandwich", epochs=3)
    straight = train_supernet(_config(tiny_model_dirs["bert"], glue_dir, tmp_path / "straight", **config), progress=False)

    real_save = train_module._save_resume_state

    def killed_after_second_epoch(*args, **kwargs):
        real_save(*args, **kwargs)
        if args[5] == 2:  # epochs_done
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(train_module, "_save_resume_state", killed_after_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_supernet(_config(tiny_model_dirs["bert"], glue_dir, tmp_path / "killed", **config), progress=False)
    monkeypatch.setattr(train_module, "_save_resume_state", real_save)
    with pytest.raises(SynePruneError, match="already exists; pass --resume"):
        train_supernet(_config(tiny_model_dirs["bert"], glue_dir, tmp_path / "killed", **config), progress=False)

    steps = []
    original_call = train_module.get_strategy

    def counting(name):
        cls = original_call(name)

        class Counting(cls):
            def __call__(self, model, batch, step):
                steps.append(step)
                return super().__call__(model, batch, step)

        return Counting

    monkeypatch.setattr(train_module, "get_strategy", counting)
    resumed = train_supernet(_config(tiny_model_dirs["bert"], glue_dir, tmp_path / "killed", **config), resume=True, progress=False)
    assert steps == [6, 7, 8]  # only the third epoch ran again (3 steps of 8 examples per epoch)
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3]
    a, b = load_file(tmp_path / "straight" / "model.safetensors"), load_file(tmp_path / "killed" / "model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)  # same result as the run that was never killed
    assert resumed["metrics"] == straight["metrics"]


def test_resume_with_other_settings_is_refused(tiny_model_dirs, glue_dir, tmp_path, monkeypatch):
    def killed(*args, **kwargs):
        train_module.__dict__["_real_save"](*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setitem(train_module.__dict__, "_real_save", train_module._save_resume_state)
    monkeypatch.setattr(train_module, "_save_resume_state", killed)
    with pytest.raises(KeyboardInterrupt):
        train_supernet(_config(tiny_model_dirs["bert"], glue_dir, tmp_path / "out", epochs=2), progress=False)
    with pytest.raises(SynePruneError, match=r"--resume with other settings than the interrupted run \(lr\)"):
        train_supernet(_config(tiny_model_dirs["bert"], glue_dir, tmp_path / "out", epochs=2, lr=5e-4), resume=True, progress=False)
    settings = json.loads((tmp_path / "out" / ".resume" / "settings.json").read_text())
    assert settings["lr"] == 1e-3


def test_warmup_is_recorded_only_when_used_and_changes_the_training(tiny_model_dirs, glue_dir, tmp_path):
    """warmup_ratio came later: at its default 0 it is left out of the settings, so earlier checkpoints still match."""
    plain, warm = (_config(tiny_model_dirs["bert"], glue_dir, tmp_path / name, strategy="standard", warmup_ratio=ratio, epochs=2)
                   for name, ratio in (("plain", 0.0), ("warm", 0.5)))
    assert "warmup_ratio" not in plain.settings() and warm.settings()["warmup_ratio"] == 0.5
    for config in (plain, warm):
        train_supernet(config, progress=False)
    assert json.loads((tmp_path / "warm" / "supernet.json").read_text())["hyperparameters"]["warmup_ratio"] == 0.5
    a, b = load_file(tmp_path / "plain" / "model.safetensors"), load_file(tmp_path / "warm" / "model.safetensors")
    assert any(not torch.equal(a[k], b[k]) for k in a)  # a slower start gives other weights


def test_a_network_that_learned_nothing_is_flagged(tiny_model_dirs, glue_dir, tmp_path, capsys):
    """A tiny network trained at lr 1e-12 predicts one class: within 0.02 of the best constant answer, so train-supernet
    says it has not learned the task, and records what the constant answer scores on validation."""
    from syne_prune.data import load_task

    config = _config(tiny_model_dirs["bert"], glue_dir, tmp_path / "out", strategy="standard", lr=1e-12)
    metadata = train_supernet(config, progress=False)
    labels = load_task("rte", str(glue_dir), config.validation_fraction, config.seed, max_train_examples=24, max_eval_examples=16).validation.labels
    majority = max(np.mean(labels == 0), np.mean(labels == 1))
    constant = metadata["constant_answer"]["validation"]
    assert constant["accuracy"] == pytest.approx(majority, abs=1e-12) and constant["error"] == pytest.approx(1 - majority, abs=1e-12)
    assert metadata["metrics"]["largest"]["validation"]["error"] >= constant["error"] - 0.02
    assert "warning: the unpruned network's validation accuracy is" in capsys.readouterr().err
    from syne_prune.evaluation import warn_if_not_learned

    assert warn_if_not_learned(metadata)  # a search over it says so again (WeightSharing.prepare calls it)
    assert "it has not learned rte" in capsys.readouterr().err
    assert not warn_if_not_learned({k: v for k, v in metadata.items() if k != "constant_answer"})  # an older record: nothing
    assert capsys.readouterr().err == ""


def test_the_best_constant_answer_per_metric(capsys):
    from syne_prune.data import get_task
    from syne_prune.evaluation import constant_answer, has_learned, warn_if_not_learned

    labels = np.array([1, 1, 1, 0])
    assert constant_answer(get_task("rte"), labels) == {"answer": 1, "accuracy": 0.75, "error": 0.25}  # the majority class
    # F1 of "1" everywhere: precision 3/4, recall 1 -> 6/7; of "0" everywhere: 0
    assert constant_answer(get_task("mrpc"), labels) == pytest.approx({"answer": 1, "f1": 6 / 7, "error": 1 / 7}, abs=1e-12)
    assert constant_answer(get_task("cola"), labels)["mcc"] == 0.0
    scores = np.array([0.0, 2.5, 5.0])
    assert constant_answer(get_task("stsb"), scores) == {"answer": 2.5, "spearman": 0.0, "error": 1.0}
    constant = {"answer": 1, "accuracy": 0.75, "error": 0.25}
    assert not has_learned({"accuracy": 0.77, "error": 0.23}, constant)  # 0.02 better: within the margin
    assert has_learned({"accuracy": 0.78, "error": 0.22}, constant)
    record = {"task": "rte", "metric": "accuracy", "constant_answer": {"validation": constant},
              "metrics": {"largest": {"validation": {"accuracy": 0.76, "error": 0.24}}}}
    assert warn_if_not_learned(record)
    line = capsys.readouterr().err.strip()
    assert line.startswith("warning: the unpruned network's validation accuracy is 0.760, within 0.02 of answering label 1 everywhere (0.750)")
