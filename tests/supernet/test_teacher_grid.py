"""``--teacher auto``'s grid: one fine-tune per learning rate (with warm-up), the one best on validation is the
teacher, and every run's validation and test metrics and seconds are recorded in supernet.json and printed."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from syne_prune.cli import main
from syne_prune.errors import SynePruneError
from syne_prune.supernet import TrainingConfig, train_supernet
from syne_prune.supernet import train as train_module
from syne_prune.supernet.teacher import grid_record, print_grid


def _run(lr: float, error: float, test_error: float | None = 0.5, seconds: float = 1.0) -> tuple[float, Path, dict]:
    test = None if test_error is None else {"accuracy": 1 - test_error, "error": test_error}
    return lr, Path(f"/t/lr-{lr:g}"), {"metric": "accuracy", "train_time_s": seconds,
                                       "metrics": {"largest": {"validation": {"accuracy": 1 - error, "error": error}, "test": test}}}


def test_the_grid_keeps_the_lowest_validation_error_the_first_of_equals_and_never_a_non_finite_one():
    grid = grid_record([_run(3e-5, 0.4, seconds=2.0), _run(8e-5, 0.2, seconds=3.0), _run(1.5e-4, 0.3, seconds=4.0)], 0.1)
    assert (grid["lr"], grid["path"]) == (8e-5, "/t/lr-8e-05")
    assert grid["learning_rates"] == [3e-5, 8e-5, 1.5e-4] and grid["warmup_ratio"] == 0.1 and grid["train_time_s"] == 9.0
    assert [row["validation"]["error"] for row in grid["runs"]] == [0.4, 0.2, 0.3]
    assert grid_record([_run(3e-5, 0.3), _run(8e-5, 0.2), _run(1.5e-4, 0.2)], 0.1)["lr"] == 8e-5
    assert grid_record([_run(3e-5, math.nan), _run(8e-5, 0.9)], 0.1)["lr"] == 8e-5


def test_the_grid_is_printed_with_every_runs_metrics_and_its_cost(capsys):
    print_grid(grid_record([_run(3e-5, 0.4, 0.45, 2.0), _run(8e-5, 0.2, None, 3.0)], 0.1))
    assert capsys.readouterr().out.splitlines() == [
        "teacher at lr 3e-05 (warm-up 10%): validation accuracy 0.6000, test accuracy 0.5500, 2 s",
        "teacher at lr 8e-05 (warm-up 10%): validation accuracy 0.8000, no test data, 3 s",
        "teacher: lr 8e-05, the best on validation; the grid's 2 fine-tunes took 5 s"]


def _config(model_dir, glue_dir, output, **kwargs) -> TrainingConfig:
    values = dict(teacher="auto", model=str(model_dir), task="rte", output=str(output), data_dir=str(glue_dir), search_space="medium",
                  strategy="sandwich", epochs=1, batch_size=8, max_train_examples=16, max_eval_examples=8, lr=1e-3, max_length=32,
                  importance="none", teacher_learning_rates=(1e-3, 5e-3, 2e-4))
    return TrainingConfig(**{**values, **kwargs})


def _scripted_teacher_validation(monkeypatch, errors_by_lr: dict[float, float]) -> None:
    """The teacher fine-tunes' validation errors say ``errors_by_lr`` (test and the super-network's scores stay real)."""
    real_write, real_evaluate, current = train_module._write_checkpoint, train_module.evaluate, {}

    def write(config, output, model, tokenizer, space, task, data, splits, *rest):
        current.update(lr=config.lr if config.strategy == "standard" else None, validation=splits[0])
        return real_write(config, output, model, tokenizer, space, task, data, splits, *rest)

    def evaluate(model, batches, task, max_batches=None):
        if current.get("lr") in errors_by_lr and batches is current["validation"]:
            error = errors_by_lr[current["lr"]]
            return {task.metric_name: 1.0 - error, "error": error}
        return real_evaluate(model, batches, task, max_batches)

    monkeypatch.setattr(train_module, "_write_checkpoint", write)
    monkeypatch.setattr(train_module, "evaluate", evaluate)


@pytest.mark.slow
def test_teacher_auto_fine_tunes_each_learning_rate_and_keeps_the_best_on_validation(tiny_model_dirs, glue_dir, tmp_path, monkeypatch):
    out = tmp_path / "out"
    _scripted_teacher_validation(monkeypatch, {1e-3: 0.4, 5e-3: 0.2, 2e-4: 0.3})
    metadata = train_supernet(_config(tiny_model_dirs["bert"], glue_dir, out), progress=False)
    chosen = out / "teacher" / "lr-0.005"
    candidates = {lr: json.loads((out / "teacher" / f"lr-{lr:g}" / "supernet.json").read_text()) for lr in (1e-3, 5e-3, 2e-4)}
    for lr, record in candidates.items():  # each a fine-tune of the full model at its learning rate, with 10% warm-up
        assert (record["strategy"], record["hyperparameters"]["lr"], record["hyperparameters"]["warmup_ratio"]) == ("standard", lr, 0.1)
    teacher = metadata["teacher"]
    assert (teacher["source"], teacher["path"], metadata["initialised_from"]) == ("auto", str(chosen), str(chosen))
    grid = teacher["fine_tune"]
    assert (grid["lr"], grid["path"], grid["learning_rates"]) == (5e-3, str(chosen), [1e-3, 5e-3, 2e-4])
    assert [row["validation"]["error"] for row in grid["runs"]] == [0.4, 0.2, 0.3]
    assert [row["test"] for row in grid["runs"]] == [record["metrics"]["largest"]["test"] for record in candidates.values()]
    assert grid["train_time_s"] == pytest.approx(sum(record["train_time_s"] for record in candidates.values()), abs=1e-9)
    assert metadata["hyperparameters"]["teacher_learning_rates"] == [1e-3, 5e-3, 2e-4]


def test_bad_teacher_grid_settings_are_one_line_errors(tiny_model_dirs, glue_dir, tmp_path, capsys):
    for kwargs, message in (({"teacher_learning_rates": ()}, "--teacher-learning-rates must be positive numbers"),
                            ({"teacher_learning_rates": (1e-3, -1.0)}, "--teacher-learning-rates must be positive numbers"),
                            ({"teacher_warmup_ratio": 1.0}, r"--teacher-warmup-ratio must be in \[0, 1\), got 1.0")):
        with pytest.raises(SynePruneError, match=message):
            train_supernet(_config(tiny_model_dirs["bert"], glue_dir, tmp_path / "out", **kwargs), progress=False)
    assert main(["train-supernet", "--model", str(tiny_model_dirs["bert"]), "--task", "rte", "--teacher-learning-rates", "1e-3,x",
                 "--output", str(tmp_path / "out")]) == 2
    assert "--teacher-learning-rates: not a comma-separated list of learning rates" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_train_supernet_parses_the_grid_and_ends_with_the_teachers_scores_and_the_grids_cost(monkeypatch, capsys):
    from syne_prune.cli import build_parser
    from syne_prune.cli import train as train_cli

    base = ["train-supernet", "--model", "m", "--task", "rte", "--output", "o"]
    assert build_parser().parse_args(base).teacher_learning_rates == (3e-5, 8e-5, 1.5e-4)
    assert build_parser().parse_args([*base, "--teacher-learning-rates", "none"]).teacher_learning_rates is None
    assert build_parser().parse_args([*base, "--teacher-learning-rates", "1e-4, 2e-4"]).teacher_learning_rates == (1e-4, 2e-4)
    grid = grid_record([_run(3e-5, 0.4, 0.45, 20.0), _run(8e-5, 0.2, 0.25, 30.0)], 0.1)
    scores = {"validation": {"accuracy": 0.8, "error": 0.2}, "test": {"accuracy": 0.75, "error": 0.25}}
    metadata = {"metric": "accuracy", "metrics": {"largest": scores, "smallest": scores},
                "teacher": {"source": "auto", "path": grid["path"], **scores, "fine_tune": grid}}
    monkeypatch.setattr(train_cli, "train_supernet", lambda config, resume, overwrite: metadata)
    assert main(base) == 0
    assert ("teacher (auto): validation accuracy 0.8000, test accuracy 0.7500; fine-tuned at lr 8e-05, the best on validation of "
            "3e-05, 8e-05 (50 s)") in capsys.readouterr().out.splitlines()
