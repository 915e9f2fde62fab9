"""benchmarks/quality.py's lever rows (teacher grid, layer-wise distillation, recovery until validation stops improving),
in a dry run on a tiny BERT and the committed RTE slice: each row runs its lever and records what measures it."""
from __future__ import annotations

import json

import pytest
import quality  # benchmarks/ is on sys.path (pytest.ini)


def test_every_lever_row_changes_one_setting_of_the_row_it_is_compared_with():
    teacher = quality.ROWS["teacher"]
    assert quality.ROWS["layer"].supernet == {**teacher.supernet, "layer_distillation": "hidden"}
    single = quality.ROWS["teacher-single"].supernet
    assert single["teacher_learning_rates"] is None and single["teacher"] == "auto"
    assert quality.ROWS["teacher-grid"].supernet == {k: v for k, v in single.items() if k != "teacher_learning_rates"}
    for row in ("recovery", "recovery-auto", "recovery-layer"):
        assert quality.ROWS[row].supernet == teacher.supernet and quality.ROWS[row].search_of == "teacher"
    assert (quality.ROWS["recovery-auto"].recovery, quality.ROWS["recovery-layer"].recovery) == ({"epochs": "auto"}, {"layer_distillation": "hidden"})
    assert quality.DEFAULT_ROWS == ["full", "importance", "teacher", "recovery"]


@pytest.mark.slow
def test_a_dry_run_of_the_lever_rows_records_each_lever(tiny_model_dirs, glue_dir, tmp_path):
    output, workdir = tmp_path / "results", tmp_path / "work"
    argv = ["--data-dir", str(glue_dir), "--model", str(tiny_model_dirs["bert"]), "--tasks", "rte", "--seeds", "0",
            "--rows", "teacher-grid", "layer", "recovery-auto", "recovery-layer", "--epochs", "1", "--lr", "1e-3",
            "--reference-lrs", "1e-3", "--teacher-learning-rates", "1e-3", "5e-3", "--batch-size", "8", "--max-length", "32",
            "--max-train-examples", "16", "--max-eval-examples", "8", "--scheduler", "random", "--max-trials", "3", "--n-workers", "1",
            "--budgets", "1.0", "--recover-epochs", "1", "--recover-lr", "1e-3", "--recover-patience", "1", "--recover-max-epochs", "2",
            "--layer-distillation-weight", "0.5", "--threads", "1", "--workdir", str(workdir), "--output", str(output), "--quiet"]
    quality.main(argv)
    results = {row: json.loads((output / f"rte-seed0-{row}.json").read_text())
               for row in ("teacher-grid", "layer", "recovery-auto", "recovery-layer")}
    grid = results["teacher-grid"]["teacher"]["fine_tune"]
    assert grid["learning_rates"] == [1e-3, 5e-3] and grid["warmup_ratio"] == 0.1 and grid["lr"] in (1e-3, 5e-3)
    assert results["teacher-grid"]["teacher"]["source"] == "auto" and results["teacher-grid"]["stages_s"]["supernet_s"] > 0
    trained = json.loads((workdir / "rte-seed0" / "supernet-layer" / "supernet.json").read_text())["hyperparameters"]
    assert (trained["layer_distillation"], trained["layer_distillation_weight"]) == ("hidden", 0.5)
    auto = results["recovery-auto"]["budgets"][0]["recovery"]
    assert auto["stop_reason"] in ("patience", "max_epochs") and 1 <= auto["epochs_run"] <= 2
    recovered = json.loads((workdir / "rte-seed0" / "recovered-recovery-layer-1" / "syne_prune.json").read_text())["recovery"]
    assert (recovered["settings"]["layer_distillation"], recovered["settings"]["epochs"]) == ("hidden", 1)
    assert results["recovery-layer"]["budgets"][0]["recovery"]["epochs_run"] == 1
    for result in results.values():
        assert result["budgets"][0]["trial_id"] is not None and 0 <= result["budgets"][0]["test"]["accuracy"] <= 1
    table = (output / "quality.md").read_text()
    assert all(f"| rte | {row} |" in table for row in results)
    written = {path.name: path.read_bytes() for path in output.glob("*.json")}
    quality.main(argv)  # resumed: every (task, seed, row) is there, nothing is run or written again
    assert {path.name: path.read_bytes() for path in output.glob("*.json")} == written
