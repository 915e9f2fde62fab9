"""What several test files share: running a command that must fail in one line (``fails``), the command lines of
every command on a tiny model (``every_command``), a tiny BERT with its tokenizer (``bert_dir``), and a model whose
forward calls are timed by a fake clock (``TimedForward``)."""
from __future__ import annotations

from pathlib import Path

import pytest
from conftest import tiny_model
from transformers import BertTokenizerFast

from syne_prune.cli import main


def fails(capsys, argv, message) -> str:
    """Run the CLI on ``argv``: exit code 2, one ``error:`` line containing ``message``, no traceback; returns the line."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err  # progress bars may precede the one error line
    assert message in errors[0], err
    return errors[0]


SCRIPTED_CURVE = [0.5, 0.4, 0.3, 0.35, 0.32, 0.1, 0.1]
"""Validation errors of an ``auto`` recovery with patience 2: before 0.5; epochs 1-4: 0.4, 0.3 (best), 0.35, 0.32, two
epochs without a lower error after epoch 2, so it stops after epoch 4 (the 0.1s must never be reached)."""


def check_stopped_on_scripted_curve(recovery: dict, scored: list[dict], output: Path) -> None:
    """The record and weights of an ``auto`` recovery (patience 2, max_epochs 6) scored on ``SCRIPTED_CURVE``:
    ``scored`` holds the weights of each validation, ``output`` the written export."""
    import torch
    from safetensors.torch import load_file

    assert len(scored) == 5  # before and 4 epochs, never a fifth
    assert (recovery["epochs_run"], recovery["stop_reason"], recovery["kept_epoch"]) == (4, "patience", 2)
    assert [h["validation"]["error"] for h in recovery["history"]] == [0.4, 0.3, 0.35, 0.32]
    assert recovery["after"]["validation"]["error"] == 0.3 and recovery["last"]["validation"]["error"] == 0.32
    assert [recovery["settings"][name] for name in ("epochs", "patience", "max_epochs")] == ["auto", 2, 6]
    written = load_file(output / "model.safetensors")
    assert all(torch.equal(written[name], scored[2][name]) for name in written)  # epoch 2's weights, bit for bit
    assert any(not torch.equal(written[name], scored[4][name]) for name in written)  # not the last epoch's
    assert not (output / ".resume").exists()


def searched_alike_on_every_backend(supernet: Path, output: Path) -> None:
    """Search ``supernet`` with the same 2 trials (random search, seed 5) on the pool, local and SageMaker backends
    (needs the ``sagemaker`` fixture) into ``output/BACKEND`` and check that every backend scored what the pool did:
    sizes, status, validation and test errors and parameters equal bit for bit, a pruned sub-network among them."""
    import pandas as pd
    from sagemaker_fixtures import sagemaker_settings

    from syne_prune.artifacts import read_trials
    from syne_prune.search import SearchConfig, WeightSharingSettings, run_search

    tables = {}
    for backend in ("pool", "local", "sagemaker"):
        extra = {"backend_settings": sagemaker_settings()} if backend == "sagemaker" else {}
        run_search(SearchConfig(trial_settings=WeightSharingSettings(str(supernet)), output=str(output / backend), scheduler="random",
                                backend=backend, n_workers=1, max_trials=2, seed=5, eval_batch_size=8, test_split="every-trial", **extra),
                   progress=False)
        trials = read_trials(output / backend / "trials.csv").sort_values("trial_id").reset_index(drop=True)
        tables[backend] = trials[[c for c in trials.columns if c.startswith(("num_", "status", "error", "test_error", "params"))]]
    assert len(tables["pool"]) == 2 and (tables["pool"]["status"] == "completed").all() and tables["pool"]["error"].between(0, 1).all()
    pd.testing.assert_frame_equal(tables["pool"], tables["local"], check_exact=True)
    pd.testing.assert_frame_equal(tables["pool"], tables["sagemaker"], check_exact=True)
    assert tables["pool"]["params"].min() < 1.0  # a pruned sub-network was scored, not only the full one


def train_args(model_dir, glue_dir, output, *extra):
    return ["train-supernet", "--model", str(model_dir), "--task", "rte", "--data-dir", str(glue_dir), "--search-space", "small",
            "--strategy", "sandwich", "--epochs", "1", "--batch-size", "8", "--max-train-examples", "16", "--max-eval-examples", "8",
            "--teacher", "none", "--output", str(output), *extra]


WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "the", "is", "good", "film"]
EXPORT_CONFIG = '{"num_layers": 1, "num_heads": 2, "num_units": 10}'


def with_tokenizer(path: Path) -> Path:
    (path / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    BertTokenizerFast(vocab=str(path / "vocab.txt")).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory) -> Path:
    """A tiny BERT with a 2-label head (RTE) and a WordPiece tokenizer."""
    path = tmp_path_factory.mktemp("bert") / "model"
    model = tiny_model("bert", "classifier")
    model.config.num_labels = 2
    type(model)(model.config).save_pretrained(path)
    return with_tokenizer(path)


def train_argv(model: Path, glue_dir: Path, output: Path) -> list[str]:
    return ["train-supernet", "--model", str(model), "--task", "rte", "--data-dir", str(glue_dir), "--epochs", "1",
            "--teacher", "none", "--output", str(output)]


def standard_argv(model: Path, glue_dir: Path, output: Path) -> list[str]:
    return ["search", "--trial-kind", "standard", "--model", str(model), "--task", "rte", "--data-dir", str(glue_dir), "--max-trials", "2",
            "--output", str(output)]


def export_argv(model: Path, output: Path) -> list[str]:
    return ["export", "--model", str(model), "--search-space", "small", "--config", EXPORT_CONFIG, "--output", str(output)]


def prune_argv(model: Path, glue_dir: Path, output: Path) -> list[str]:
    return ["prune", "--method", "layer-drop", "--model", str(model), "--task", "rte", "--data-dir", str(glue_dir), "--max-params",
            "0.9", "--output", str(output)]


def every_command(model: Path, glue_dir: Path, tmp_path: Path) -> dict[str, tuple[list[str], Path]]:
    outputs = {name: tmp_path / f"out-{name}" for name in ("train", "standard", "export", "prune")}
    return {"train": (train_argv(model, glue_dir, outputs["train"]), outputs["train"]),
            "standard": (standard_argv(model, glue_dir, outputs["standard"]), outputs["standard"]),
            "export": (export_argv(model, outputs["export"]), outputs["export"]),
            "prune": (prune_argv(model, glue_dir, outputs["prune"]), outputs["prune"])}


class TimedForward:
    """Wraps ``model.forward`` and replaces syne_prune.objectives' clock: every forward call is recorded (its keyword
    inputs and whether the model was in training mode) and advances the clock by the next of ``durations_s``, so the
    timed value of each call is known in advance."""

    def __init__(self, monkeypatch, model, durations_s):
        from types import SimpleNamespace

        from syne_prune import objectives

        self.calls, self.now, durations = [], 1000.0, list(durations_s)
        real = model.forward

        def forward(*args, **kwargs):
            self.calls.append({"args": args, "training": model.training, **{k: v.clone() for k, v in kwargs.items()}})
            output = real(*args, **kwargs)
            self.now += durations.pop(0)
            return output
        monkeypatch.setattr(model, "forward", forward)
        monkeypatch.setattr(objectives, "time", SimpleNamespace(perf_counter=lambda: self.now))


# the sub-network the recovery tests export: medium space on the tiny BERT, per layer 2 and 3 of 4 heads, 20 and 10 of
# 37 neurons (a pruned config, with its modeling code)
CONFIG = '{"num_heads_0": 2, "num_units_0": 20, "num_heads_1": 3, "num_units_1": 10}'
# recovery settings that keep a recovery of the tiny export to seconds
FAST = dict(lr=1e-3, batch_size=8, max_train_examples=24, max_eval_examples=16, temperature=2.0, progress=False)


@pytest.fixture(scope="module")
def exported(tiny_model_dirs, glue_dir, tmp_path_factory) -> tuple[Path, Path]:
    """A tiny BERT super-network (RTE slice) and a sub-network exported from it with the CLI."""
    from syne_prune.supernet import TrainingConfig, train_supernet

    root = tmp_path_factory.mktemp("recovery")
    config = TrainingConfig(teacher=None, model=str(tiny_model_dirs["bert"]), task="rte", output=str(root / "supernet"), data_dir=str(glue_dir),
                            search_space="medium", strategy="sandwich", epochs=1, batch_size=8, lr=1e-3, max_length=48,
                            max_train_examples=32, max_eval_examples=16)
    train_supernet(config, progress=False)
    argv = ["export", "--model", str(root / "supernet"), "--search-space", "medium", "--config", CONFIG, "--output", str(root / "export")]
    assert main(argv) == 0
    return root / "supernet", root / "export"
