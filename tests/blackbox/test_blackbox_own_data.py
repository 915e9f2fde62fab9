"""``blackbox record`` on a super-network trained on the user's own files: the task comes from supernet.json (no
task options), the rows are scored on the user's splits, and a task without test data records no test error."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from syne_prune.blackbox import read_blackbox
from syne_prune.cli import main

LABELS = ("complaint", "praise")


def _write(path: Path, rows: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"review": [f"the film is {('bad', 'good')[i % 2]} {'a' * (i % 3)}" for i in range(rows)],
                  "verdict": [LABELS[i % 2] for i in range(rows)]}).to_csv(path, index=False)
    return path


def _supernet(model: Path, folder: Path, with_test: bool) -> Path:
    train = _write(folder / "data" / "train.csv", 24)
    test = ["--test-file", str(_write(folder / "data" / "test.csv", 10))] if with_test else []
    assert main(["train-supernet", "--model", str(model), "--train-file", str(train), *test, "--text-columns", "review", "--label-column",
                 "verdict", "--epochs", "1", "--max-length", "12", "--batch-size", "8", "--teacher", "none", "--importance", "none",
                 "--strategy", "sandwich", "--output", str(folder / "sn")]) == 0
    return folder / "sn"


@pytest.mark.slow
@pytest.mark.parametrize("with_test", [True, False])
def test_blackbox_record_reads_the_task_from_the_supernet(bert_dir, tmp_path, with_test):
    supernet = _supernet(bert_dir, tmp_path, with_test)
    trained = json.loads((supernet / "supernet.json").read_text())
    assert main(["blackbox", "record", "--supernet", str(supernet), "--samples", "3", "--fidelity-levels", "2", "--quiet",
                 "--output", str(tmp_path / "bb")]) == 0
    blackbox = read_blackbox(tmp_path / "bb", supernet)
    assert blackbox.header["task"] == trained["task"] and blackbox.header["task"]["labels"] == list(LABELS)
    assert blackbox.header["metric"] == "accuracy" and len(blackbox.rows) == 3
    largest = blackbox.rows.iloc[0]  # recorded first; supernet.json scored it on the same splits after training
    assert largest["params"] == pytest.approx(1.0)
    assert largest["valid_error_2"] == pytest.approx(trained["metrics"]["largest"]["validation"]["error"], abs=1e-6)
    if with_test:
        assert largest["test_error"] == pytest.approx(trained["metrics"]["largest"]["test"]["error"], abs=1e-6)
    else:
        assert blackbox.rows["test_error"].isna().all() and trained["metrics"]["largest"]["test"] is None
    assert main(["benchmark", "--blackbox", str(tmp_path / "bb"), "--output", str(tmp_path / "bench"), "--schedulers", "random",
                 "--seeds", "1", "--max-trials", "3", "--surrogate", "none", "--jobs", "1", "--quiet"]) == 0
