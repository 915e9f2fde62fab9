"""Recovery of an embedding export: distils again on the recorded sentences, keeps the best weights on validation,
and writes an embedding export with its sentence-transformers files; a labelled option is refused in one line."""
from __future__ import annotations

import json

import pytest
import torch
from helpers import SCRIPTED_CURVE, check_stopped_on_scripted_curve, fails
from safetensors.torch import load_file

from syne_prune import training
from syne_prune.cli import main
from syne_prune.data import TaskSpec
from syne_prune.embedding import (
    EmbeddingScorer,
    EmbeddingTrainingConfig,
    Pooling,
    embed,
    load_embedding_data,
    load_encoder,
    read_pooling,
    recover_embedding,
    train_embedding_supernet,
)
from syne_prune.errors import SynePruneError
from syne_prune.models import load_tokenizer

pytestmark = pytest.mark.slow  # trains a super-network and exports it first (about 6 s)
FAST = {"batch_size": 8, "lr": 1e-3, "progress": False}
FAST_ARGS = ["--batch-size", "8", "--lr", "1e-3"]


@pytest.fixture(scope="module")
def small_export(st_dir, embedding_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("recovery")
    task = TaskSpec(train_file=str(embedding_data["sentences"]), task_type="embedding")
    train_embedding_supernet(EmbeddingTrainingConfig(model=str(st_dir), task=task, epochs=1, batch_size=8, search_space="small", max_length=32,
                                                     importance="none", output=str(root / "sn")), progress=False)
    assert main(["export", "--model", str(root / "sn"), "--search-space", "small", "--config",
                 '{"num_layers": 1, "num_heads": 2, "num_units": 10}', "--output", str(root / "small")]) == 0
    return root / "small"


def test_recovery_keeps_the_best_validation_weights(small_export, st_dir, tmp_path):
    torch.set_num_threads(1)
    record = recover_embedding(small_export, st_dir, 2, tmp_path / "rec", batch_size=8, lr=1e-3, progress=False)
    recovery = record["recovery"]
    validated = [recovery["before"]["validation"]["error"]] + [h["validation"]["error"] for h in recovery["history"]]
    assert recovery["kept_epoch"] == validated.index(min(validated))
    assert recovery["after"]["validation"]["error"] == min(validated)
    assert read_pooling(tmp_path / "rec") == Pooling("mean", True)
    # the written weights score what the record says
    spec = TaskSpec.from_json(record["embedding_task"])
    data = load_embedding_data(spec, record["data"]["validation_fraction"], record["data"]["seed"])
    tokenizer = load_tokenizer(str(tmp_path / "rec"))
    teacher = embed(load_encoder(str(st_dir)), Pooling(), data.validation, tokenizer, 32)
    scorer = EmbeddingScorer(Pooling(), tokenizer, 32, None, data.validation, teacher)
    assert scorer.scores(load_encoder(str(tmp_path / "rec")))["error"] == pytest.approx(recovery["after"]["validation"]["error"], abs=1e-5)
    assert json.loads((tmp_path / "rec" / "syne_prune.json").read_text())["heads_per_layer"] == record["heads_per_layer"]


def test_labelled_options_are_refused(small_export, st_dir, tmp_path, capsys):
    fails(capsys, ["recover", "--model", str(small_export), "--teacher", str(st_dir), "--epochs", "1", "--output", str(tmp_path / "r"),
                   "--max-length", "16"], "--max-length does not apply to an embedding export")
    assert not (tmp_path / "r").exists()


def _scripted_validation(monkeypatch, errors: list[float]) -> list[dict[str, torch.Tensor]]:
    """Recovery's validation scores say ``errors`` in order; returns, per validation scored, a copy of the weights it scored."""
    scored = []

    def scripted(self, model):
        scored.append({name: tensor.detach().cpu().clone() for name, tensor in model.state_dict().items()})
        error = errors[len(scored) - 1]
        return {self.metric_name: 1.0 - error, "error": error}

    monkeypatch.setattr(EmbeddingScorer, "scores", scripted)
    return scored


def test_auto_recovery_stops_on_a_scripted_validation_curve_and_keeps_the_best_epoch(small_export, st_dir, tmp_path, monkeypatch):
    scored = _scripted_validation(monkeypatch, SCRIPTED_CURVE)
    recovery = recover_embedding(small_export, st_dir, "auto", tmp_path / "out", patience=2, max_epochs=6, **FAST)["recovery"]
    check_stopped_on_scripted_curve(recovery, scored, tmp_path / "out")


def test_auto_recovery_ends_at_the_cap_while_validation_still_improves(small_export, st_dir, tmp_path, monkeypatch):
    scored = _scripted_validation(monkeypatch, [0.9, 0.8, 0.7, 0.6, 0.5])
    recovery = recover_embedding(small_export, st_dir, "auto", tmp_path / "out", patience=2, max_epochs=3, **FAST)["recovery"]
    assert len(scored) == 4
    assert (recovery["epochs_run"], recovery["stop_reason"], recovery["kept_epoch"]) == (3, "max_epochs", 3)
    with pytest.raises(SynePruneError, match="^--epochs must be a positive integer or 'auto', got soon$"):
        recover_embedding(small_export, st_dir, "soon", tmp_path / "bad")
    with pytest.raises(SynePruneError, match="^--patience must be a positive integer, got 0$"):
        recover_embedding(small_export, st_dir, "auto", tmp_path / "bad", patience=0)
    assert not (tmp_path / "bad").exists()


def _kill_after_epoch(monkeypatch, epoch: int):
    """Make recovery stop (KeyboardInterrupt) right after it saved its resume state of ``epoch``; returns the real save."""
    real_save = training.TrainingLoop.save

    def save_then_kill(self, path, **extra):
        real_save(self, path, **extra)
        if self.epochs_done == epoch:
            raise KeyboardInterrupt

    monkeypatch.setattr(training.TrainingLoop, "save", save_then_kill)
    return real_save


def _counted_scores(monkeypatch) -> list[float]:
    """Count the validation scorings (real scores); returns the errors handed out."""
    real, handed = EmbeddingScorer.scores, []

    def counted(self, model):
        scores = real(self, model)
        handed.append(scores["error"])
        return scores

    monkeypatch.setattr(EmbeddingScorer, "scores", counted)
    return handed


def test_killed_recovery_resumes_to_the_uninterrupted_result(small_export, st_dir, tmp_path, monkeypatch):
    settings = {"epochs": 3, **FAST}
    whole = _counted_scores(monkeypatch)
    uninterrupted = recover_embedding(small_export, st_dir, output=tmp_path / "whole", **settings)["recovery"]
    assert len(whole) == 4  # before and 3 epochs
    real_save = _kill_after_epoch(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        recover_embedding(small_export, st_dir, output=tmp_path / "killed", **settings)
    monkeypatch.setattr(training.TrainingLoop, "save", real_save)
    assert (tmp_path / "killed" / ".resume" / "state.pt").is_file() and not (tmp_path / "killed" / "syne_prune.json").exists()
    resumed_scores = _counted_scores(monkeypatch)
    resumed = recover_embedding(small_export, st_dir, output=tmp_path / "killed", resume=True, **settings)["recovery"]
    assert len(resumed_scores) == 3  # the export as it came, then epochs 2 and 3 only
    a, b = load_file(tmp_path / "whole" / "model.safetensors"), load_file(tmp_path / "killed" / "model.safetensors")
    assert a.keys() == b.keys() and max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-6
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3]
    for mine, theirs in zip(resumed["history"], uninterrupted["history"], strict=True):
        assert mine["train_loss"] == pytest.approx(theirs["train_loss"], abs=1e-6)
        assert mine["validation"] == pytest.approx(theirs["validation"], abs=1e-6)
    for name in ("before", "after", "last"):
        assert resumed[name]["validation"] == pytest.approx(uninterrupted[name]["validation"], abs=1e-6) and resumed[name]["test"] is None
    for name in ("kept_epoch", "epochs_run", "stop_reason"):
        assert resumed[name] == uninterrupted[name], name
    assert resumed["settings"] == uninterrupted["settings"]
    assert not (tmp_path / "killed" / ".resume").exists()
    again = recover_embedding(small_export, st_dir, output=tmp_path / "killed", resume=True, **settings)  # finished: returned as it is
    assert again["recovery"]["history"] == resumed["history"]


def test_a_resume_with_other_settings_is_refused_in_one_line(small_export, st_dir, tmp_path, monkeypatch, capsys):
    real_save = _kill_after_epoch(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        recover_embedding(small_export, st_dir, "auto", tmp_path / "killed", patience=1, max_epochs=3, **FAST)
    monkeypatch.setattr(training.TrainingLoop, "save", real_save)
    state = (tmp_path / "killed" / ".resume" / "state.pt").read_bytes()
    with pytest.raises(SynePruneError, match=r"^--resume with other settings than the interrupted run \(lr, max_epochs\); use the same ones$"):
        recover_embedding(small_export, st_dir, "auto", tmp_path / "killed", patience=1, max_epochs=4, resume=True, **{**FAST, "lr": 1e-4})
    fails(capsys, ["recover", "--model", str(small_export), "--teacher", str(st_dir), "--epochs", "2", "--output", str(tmp_path / "killed"),
                   "--resume", *FAST_ARGS], "--resume with other settings than the interrupted run (epochs, max_epochs, patience); use the same ones")
    assert (tmp_path / "killed" / ".resume" / "state.pt").read_bytes() == state  # nothing touched
    with pytest.raises(SynePruneError, match="^nothing to resume in .* drop --resume to start anew$"):
        recover_embedding(small_export, st_dir, 1, tmp_path / "never", resume=True, **FAST)


def test_recover_and_export_take_auto_for_an_embedding_export(small_export, st_dir, tmp_path, monkeypatch, capsys):
    _scripted_validation(monkeypatch, [0.5, 0.6, 0.7])
    assert main(["recover", "--model", str(small_export), "--teacher", str(st_dir), "--epochs", "auto", "--patience", "2", "--max-epochs", "4",
                 "--output", str(tmp_path / "rec"), *FAST_ARGS]) == 0
    out = capsys.readouterr().out
    assert "in 2 epoch(s) of distillation" in out and "(--epochs auto: stopped after 2 epoch(s) without a better validation error)" in out
    assert "cosine 0.5000 -> 0.5000, no test data (kept epoch 0" in out
    record = json.loads((tmp_path / "rec" / "syne_prune.json").read_text())["recovery"]
    assert (record["settings"]["epochs"], record["epochs_run"], record["stop_reason"]) == ("auto", 2, "patience")
    _scripted_validation(monkeypatch, [0.5, 0.4, 0.3])
    assert main(["export", "--model", str(small_export.parent / "sn"), "--search-space", "small", "--config",
                 '{"num_layers": 1, "num_heads": 2, "num_units": 10}', "--output", str(tmp_path / "exp"), "--recover-epochs", "auto",
                 "--recover-patience", "1", "--recover-max-epochs", "2"]) == 0
    assert "(--epochs auto: stopped at the most epochs)" in capsys.readouterr().out
    record = json.loads((tmp_path / "exp" / "syne_prune.json").read_text())["recovery"]
    assert (record["settings"]["patience"], record["settings"]["max_epochs"], record["epochs_run"], record["stop_reason"]) == (1, 2, 2, "max_epochs")
