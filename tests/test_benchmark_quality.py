"""benchmarks/quality.py's yardstick: the share of the reference's gain over the best constant answer."""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

from syne_prune.artifacts import SupernetDir

_spec = importlib.util.spec_from_file_location("quality", Path(__file__).resolve().parents[1] / "benchmarks" / "quality.py")
quality = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(quality)


def test_kept_is_the_share_of_the_gain_over_the_constant_answer():
    # MRPC: "paraphrase" everywhere scores F1 0.812; the reference gains 0.05 over it, the sub-network 0.038 of that
    assert quality.kept("mrpc", {"f1": 0.85}, {"f1": 0.862, "constant": 0.812}) == pytest.approx(0.76, abs=1e-12)
    # RTE: the majority class scores 0.527; 0.013 of the reference's 0.023
    assert quality.kept("rte", {"accuracy": 0.54}, {"accuracy": 0.55, "constant": 0.527}) == pytest.approx(0.013 / 0.023, abs=1e-12)
    # STS-B: a constant's Spearman is 0, so the share is the plain ratio
    assert quality.kept("stsb", {"spearman": 0.8}, {"spearman": 0.85, "constant": 0.0}) == pytest.approx(0.8 / 0.85, abs=1e-12)
    assert math.isnan(quality.kept("rte", {"accuracy": 0.54}, {"accuracy": 0.527, "constant": 0.527}))  # the reference gained nothing


def test_recipe_grid_row_is_read_from_the_checkpoint_and_the_search(tmp_path, monkeypatch):
    import json
    import sys

    import numpy as np
    import pandas as pd

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import recipe_grid

    supernet, search = tmp_path / "supernet", tmp_path / "search"
    supernet.mkdir()
    search.mkdir()
    SupernetDir(supernet).write({"hyperparameters": {"lr": 1.5e-4, "epochs": 3}, "train_time_s": 480.0})
    (search / "summary.json").write_text(json.dumps({"hypervolume": 0.39}))
    pd.DataFrame({"status": ["completed", "completed", "completed", "failed"], "error": [0.15, 0.16, 0.20, 0.01]}).to_csv(
        search / "trials.csv", index=False)
    # prunable shares of the completed trials: 0.9, 0.6, 0.4 (the failed trial is dropped before)
    monkeypatch.setattr(recipe_grid, "prunable_ratios", lambda directory, trials, space: np.array([0.9, 0.6, 0.4]))
    row = recipe_grid.point_row("mrpc", 0, "lr1.5e-4", supernet, search)
    assert {k: row[k] for k in ("lr", "epochs", "warmup_ratio", "hypervolume", "train_time_s")} == {
        "lr": 1.5e-4, "epochs": 3, "warmup_ratio": 0.0, "hypervolume": 0.39, "train_time_s": 480.0}  # no warm-up recorded: 0
    assert (row["valid_error_0.75"], row["valid_error_0.5"]) == (0.16, 0.20) and math.isnan(row["valid_error_0.33"])
    assert "| mrpc | 0 | lr1.5e-4 | 0.00015 | 3 | 0 | 0.3900 | 0.1600 | 0.2000 | nan | 480 |" in recipe_grid.markdown(pd.DataFrame([row]))
