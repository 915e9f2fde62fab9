"""The one training loop: resume equals an uninterrupted run; a non-finite loss stops it before anything is saved."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import VOCAB, tiny_model

from syne_prune import SynePruneError
from syne_prune.training import LoopSettings, TrainingLoop, label_loss_step, seed_everything

SETTINGS = LoopSettings(epochs=3, lr=1e-3, batch_size=4, seed=0, warmup_ratio=0.2, progress=False)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import BertTokenizerFast

    vocab = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(VOCAB - 5)]) + "\n")
    return BertTokenizerFast(vocab=str(vocab))


def _examples(count: int = 10) -> list[dict]:
    rng = np.random.RandomState(3)
    examples = []
    for i in range(count):
        length = int(rng.randint(4, 12))  # unequal lengths: batches are padded
        examples.append({"input_ids": rng.randint(5, VOCAB, length).tolist(), "attention_mask": [1] * length, "labels": i % 3})
    return examples


class NoisyStep:
    """Plain fine-tuning whose loss is scaled by a draw from its own generator (as a strategy samples sub-networks);
    the model's dropout draws from torch's generator. A resume that restores either wrongly changes the weights."""

    def __init__(self, seed: int) -> None:
        self.random_state = np.random.RandomState(seed)

    def __call__(self, model, batch, step):
        loss = model(**batch).loss * (0.5 + self.random_state.rand())
        loss.backward()
        return float(loss.detach())


def _loop(model, tokenizer, step_seed: int = 0, settings: LoopSettings = SETTINGS) -> TrainingLoop:
    step = NoisyStep(step_seed)
    return TrainingLoop(model.train(), _examples(), tokenizer, step, settings, random_state=step.random_state)  # GPU if there is one


def test_killed_after_epoch_one_and_resumed_equals_uninterrupted(tokenizer, tmp_path):
    seed_everything(0)
    straight = _loop(tiny_model("bert", "classifier"), tokenizer)
    straight.run()

    class Killed(Exception):
        pass

    def save_then_kill(record):
        killed.save(tmp_path / "state.pt")
        raise Killed

    seed_everything(0)
    killed = _loop(tiny_model("bert", "classifier"), tokenizer)
    with pytest.raises(Killed):
        killed.run(save_then_kill)
    state = torch.load(tmp_path / "state.pt", weights_only=False)
    assert state["epochs_done"] == 1 and "cuda_rng" in state
    assert (state["cuda_rng"] is None) == (not torch.cuda.is_available())
    assert state["strategy_rng"] is not None and len(state["history"]) == 1

    seed_everything(99)  # another process: other global generators, other initial weights, a fresh step generator
    resumed = _loop(tiny_model("bert", "classifier", seed=5), tokenizer, step_seed=7)
    assert resumed.resume(tmp_path / "state.pt") and resumed.epochs_done == 1
    resumed.run()
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    for a, b in zip(straight.history, resumed.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-6)
    want, got = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.allclose(want[k], got[k], atol=1e-6) for k in want)
    # the weights moved during training, so equality above is not trivial
    assert not torch.allclose(want["classifier.weight"].cpu(), tiny_model("bert", "classifier").state_dict()["classifier.weight"], atol=1e-3)


def test_resume_without_a_state_file_starts_from_epoch_zero(tokenizer, tmp_path):
    loop = _loop(tiny_model("bert", "classifier"), tokenizer)
    assert loop.resume(tmp_path / "none.pt") is False and loop.epochs_done == 0


@pytest.mark.parametrize("cause", ["huge_lr", "nan_weight"])
def test_a_non_finite_loss_stops_training_with_one_line_and_saves_nothing(tokenizer, tmp_path, cause):
    model = tiny_model("bert", "classifier")
    settings = SETTINGS
    if cause == "huge_lr":
        settings = LoopSettings(epochs=2, lr=1e30, batch_size=4, progress=False)
    else:
        with torch.no_grad():
            model.bert.encoder.layer[0].attention.self.query.weight[0, 0] = float("nan")
    loop = TrainingLoop(model.train(), _examples(), tokenizer, label_loss_step, settings)
    with pytest.raises(SynePruneError) as error:
        loop.run(lambda record: loop.save(tmp_path / "state.pt"))
    message = str(error.value)
    assert len(message.splitlines()) == 1 and "epoch 1" in message and "lower --lr" in message and "float32" in message, message
    if cause == "nan_weight":
        assert "training loss (epoch 1, step 1 of 3) is nan" in message, message
    assert not (tmp_path / "state.pt").exists() and loop.epochs_done == 0


def test_a_non_finite_supernet_training_writes_no_checkpoint(tiny_model_dirs, glue_dir, tmp_path, capsys):
    from syne_prune.cli import main

    out = tmp_path / "out"
    argv = ["train-supernet", "--model", str(tiny_model_dirs["bert"]), "--task", "rte", "--data-dir", str(glue_dir),
            "--strategy", "standard", "--epochs", "2", "--batch-size", "8", "--max-train-examples", "16",
            "--max-eval-examples", "8", "--max-length", "32", "--lr", "1e30", "--output", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]  # progress bars may precede it
    assert len(errors) == 1 and "Traceback" not in err, err
    assert "training loss (epoch 1, step 2 of 2) is nan" in errors[0] and "lower --lr (now 1e+30)" in errors[0], err
    assert not (out / ".resume" / "state.pt").exists() and not (out / "supernet.json").exists()


def test_group_by_length_is_the_runs_choice_and_trains_on_grouped_batches(tokenizer, monkeypatch):
    """``--group-by-length`` (``use_group_by_length``) reaches the loop's loader, and the loop trains on it to finite
    weights; outside it, the plain shuffle."""
    import syne_prune.training as training
    from syne_prune.data import group_by_length, use_group_by_length

    asked, real = [], training.data_loader
    monkeypatch.setattr(training, "data_loader", lambda *a, **k: asked.append(k["group_by_length"]) or real(*a, **k))
    settings = LoopSettings(epochs=2, lr=1e-3, batch_size=3, seed=0, progress=False)
    TrainingLoop(tiny_model("bert", "classifier"), _examples(), tokenizer, label_loss_step, settings).run()
    with use_group_by_length(True):
        assert group_by_length()
        model = tiny_model("bert", "classifier")
        history = TrainingLoop(model, _examples(), tokenizer, label_loss_step, settings).run()
    assert not group_by_length()
    assert asked == [False, False, True, True]
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters()) and np.isfinite(history[-1]["train_loss"])
