"""benchmarks/embedding_quality.py at a tiny setting on a tiny sentence-transformers model and the committed GLUE
slices: every stage runs, the seed's JSON holds the search's choice and the layer-dropping baseline, and a second run
resumes from what is there without training again."""
from __future__ import annotations

import json

import embedding_quality  # benchmarks/ is on sys.path (pytest.ini)
import pytest
import torch


@pytest.mark.slow
def test_a_tiny_run_writes_the_seed_json_and_resumes(st_dir, glue_dir, tmp_path):
    torch.set_num_threads(1)
    argv = ["--data-dir", str(glue_dir), "--model", str(st_dir), "--seeds", "0", "--budgets", "0.6", "--epochs", "1", "--max-trials", "4",
            "--n-workers", "1", "--scheduler", "random", "--max-sentences", "60", "--max-pairs", "20", "--max-test-pairs", "20",
            "--threads", "1", "--workdir", str(tmp_path / "work"), "--output", str(tmp_path / "results")]
    embedding_quality.main(argv)
    result = json.loads((tmp_path / "results" / "seed0.json").read_text())
    assert -1 <= result["unpruned"]["dev_spearman"] <= 1 and result["unpruned"]["sentences_per_s_batch32"] > 0
    budget = result["budgets"]["0.60"]
    assert budget["search"]["encoder_ratio"] <= 0.6 and budget["layer_drop"]["layers_kept"] == 1
    for row in budget.values():
        assert row["kept_after_recovery"] == pytest.approx(row["dev_spearman_after_recovery"] / result["unpruned"]["dev_spearman"])
    stamp = (tmp_path / "work" / "seed0" / "supernet" / "supernet.json").stat().st_mtime_ns
    embedding_quality.main(argv)
    assert (tmp_path / "work" / "seed0" / "supernet" / "supernet.json").stat().st_mtime_ns == stamp
    assert json.loads((tmp_path / "results" / "seed0.json").read_text()) == result
