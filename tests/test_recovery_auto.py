"""Recovery with ``epochs="auto"``: it trains until the validation error has not improved for ``patience`` epochs (at
most ``max_epochs``), keeps the best epoch, and records how many epochs ran and why it stopped."""
from __future__ import annotations

import json

import pytest
import torch
from helpers import FAST, SCRIPTED_CURVE, check_stopped_on_scripted_curve
from safetensors.torch import load_file

from syne_prune.cli import main
from syne_prune.errors import SynePruneError
from syne_prune.recovery import RecoverySettings, recover


@pytest.mark.parametrize(("errors", "patience", "max_epochs", "reason"), [
    ([0.5, 0.4], 2, 10, None),  # improving, below the cap: train on
    ([0.5, 0.4, 0.3, 0.35, 0.32], 2, 10, "patience"),  # best at epoch 2, then two epochs without a lower error
    ([0.5, 0.4, 0.3, 0.35], 2, 10, None),  # one epoch without: train on
    ([0.5, 0.4, 0.4], 1, 10, "patience"),  # a tie is no improvement
    ([0.5, 0.4, 0.3], 2, 2, "max_epochs"),
    ([0.5, float("nan"), float("nan")], 2, 10, "patience"),  # a non-finite validation error never improves
])
def test_auto_stops_after_patience_epochs_without_a_lower_validation_error_or_at_the_cap(errors, patience, max_epochs, reason):
    settings = RecoverySettings("auto", patience=patience, max_epochs=max_epochs)
    assert settings.stop_reason(errors) == reason
    assert settings.epochs_to_train == max_epochs


def test_a_number_of_epochs_stops_after_that_many():
    settings = RecoverySettings(3, patience=1)
    assert [settings.stop_reason([0.5] * (done + 1)) for done in range(4)] == [None, None, None, "epochs"]
    assert settings.epochs_to_train == 3


@pytest.mark.parametrize(("settings", "message"), [
    (RecoverySettings("soon"), "--epochs must be a positive integer or 'auto', got soon"),
    (RecoverySettings(0), "--epochs must be a positive integer or 'auto', got 0"),
    (RecoverySettings("auto", patience=0), "--patience must be a positive integer, got 0"),
    (RecoverySettings("auto", max_epochs=-1), "--max-epochs must be a positive integer, got -1"),
])
def test_bad_auto_settings_are_one_line_errors(settings, message):
    with pytest.raises(SynePruneError, match=f"^{message}$"):
        settings.check()


def _scripted_validation(monkeypatch, errors: list[float]) -> list[dict[str, torch.Tensor]]:
    """Recovery's validation errors say ``errors`` in order (test scores stay real); returns, per validation scored, a
    copy of the weights it scored."""
    from syne_prune import recovery

    real, scored, validation_batches = recovery.evaluate, [], []

    def scripted(model, batches, task, max_batches=None):
        if not validation_batches:  # recovery scores validation first
            validation_batches.append(batches)
        if batches is not validation_batches[0]:
            return real(model, batches, task, max_batches)
        scored.append({name: tensor.detach().cpu().clone() for name, tensor in model.state_dict().items()})
        error = errors[len(scored) - 1]
        return {task.metric_name: 1.0 - error, "error": error}

    monkeypatch.setattr(recovery, "evaluate", scripted)
    return scored


@pytest.mark.slow
def test_auto_recovery_stops_on_a_scripted_validation_curve_and_keeps_the_best_epoch(exported, tmp_path, monkeypatch):  # noqa: F811
    supernet, export = exported
    scored = _scripted_validation(monkeypatch, SCRIPTED_CURVE)
    result = recover(export, supernet, "auto", tmp_path / "out", patience=2, max_epochs=6, **FAST)
    recovery = result.record["recovery"]
    check_stopped_on_scripted_curve(recovery, scored, tmp_path / "out")


def test_auto_recovery_ends_at_the_cap_while_validation_still_improves(exported, tmp_path, monkeypatch):  # noqa: F811
    supernet, export = exported
    scored = _scripted_validation(monkeypatch, [0.9, 0.8, 0.7, 0.6, 0.5])
    recovery = recover(export, supernet, "auto", tmp_path / "out", patience=2, max_epochs=3, **FAST).record["recovery"]
    assert len(scored) == 4
    assert (recovery["epochs_run"], recovery["stop_reason"], recovery["kept_epoch"]) == (3, "max_epochs", 3)


def test_killed_auto_recovery_resumed_after_its_stop_trains_no_further(exported, tmp_path, monkeypatch):  # noqa: F811
    """Killed after the epoch that met the patience (its state saved): the resumed run trains nothing more."""
    from syne_prune import training

    supernet, export = exported
    real_save = training.TrainingLoop.save

    def save_then_kill_at_epoch_2(self, path, **extra):
        real_save(self, path, **extra)
        if self.epochs_done == 2:
            raise KeyboardInterrupt

    _scripted_validation(monkeypatch, [0.2, 0.3, 0.4])  # no epoch better than the export: stop after 2
    monkeypatch.setattr(training.TrainingLoop, "save", save_then_kill_at_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        recover(export, supernet, "auto", tmp_path / "out", patience=2, max_epochs=5, **FAST)
    monkeypatch.setattr(training.TrainingLoop, "save", real_save)
    scored = _scripted_validation(monkeypatch, [0.2])  # only the export's score is taken again
    recovery = recover(export, supernet, "auto", tmp_path / "out", patience=2, max_epochs=5, resume=True, **FAST).record["recovery"]
    assert len(scored) == 1
    assert (recovery["epochs_run"], recovery["stop_reason"], recovery["kept_epoch"]) == (2, "patience", 0)
    original, written = load_file(export / "model.safetensors"), load_file(tmp_path / "out" / "model.safetensors")
    assert all(torch.equal(original[name], written[name]) for name in original)


def test_recover_and_export_take_auto_on_the_command_line(exported, tmp_path, capsys, monkeypatch):  # noqa: F811
    supernet, export = exported
    _scripted_validation(monkeypatch, [0.5, 0.6, 0.7])
    fast = ["--lr", "1e-3", "--batch-size", "8", "--max-train-examples", "24", "--max-eval-examples", "16"]
    assert main(["recover", "--model", str(export), "--teacher", str(supernet), "--epochs", "auto", "--patience", "2",
                 "--max-epochs", "4", "--output", str(tmp_path / "rec"), *fast]) == 0
    assert "(--epochs auto: stopped after 2 epoch(s) without a better validation error): validation" in capsys.readouterr().out
    record = json.loads((tmp_path / "rec" / "syne_prune.json").read_text())["recovery"]
    assert (record["settings"]["epochs"], record["epochs_run"], record["stop_reason"]) == ("auto", 2, "patience")
    _scripted_validation(monkeypatch, [0.5, 0.6, 0.7])
    config = '{"num_heads_0": 2, "num_units_0": 20, "num_heads_1": 3, "num_units_1": 10}'
    assert main(["export", "--model", str(supernet), "--search-space", "medium", "--config", config, "--output", str(tmp_path / "exp"),
                 "--recover-epochs", "auto", "--recover-patience", "2", "--recover-max-epochs", "3"]) == 0
    record = json.loads((tmp_path / "exp" / "syne_prune.json").read_text())["recovery"]
    assert (record["settings"]["patience"], record["settings"]["max_epochs"], record["epochs_run"]) == (2, 3, 2)
    readme = (tmp_path / "exp" / "README.md").read_text()
    assert "--recover-epochs auto --recover-patience 2 --recover-max-epochs 3" in readme
    capsys.readouterr()
    assert main(["recover", "--model", str(export), "--teacher", str(supernet), "--epochs", "soon", "--output", str(tmp_path / "bad")]) == 2
    assert capsys.readouterr().err.strip() == "error: --epochs must be a positive integer or 'auto', got soon"
    assert main(["export", "--model", str(supernet), "--search-space", "medium", "--config", config, "--output", str(tmp_path / "bad"),
                 "--recover-epochs", "soon"]) == 2
    assert capsys.readouterr().err.strip() == "error: --recover-epochs must be a positive integer or 'auto', got soon"
    assert not (tmp_path / "bad").exists()
