"""benchmarks/embedding_quality.py at a tiny setting on a tiny sentence-transformers model and the committed GLUE
slices: every stage runs, the seed's JSON holds the search's choice, the layer-dropping baseline, the protocol, the
stages' seconds and the throughput timed side by side in PyTorch and ONNX Runtime, a second run resumes from what is
there without training again, and a run of another protocol is refused (exit code 2) before it touches the workdir or
the results."""
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
            "--threads", "1", "--throughput-rounds", "3", "--workdir", str(tmp_path / "work"), "--output", str(tmp_path / "results")]
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
    assert result["protocol"]["epochs"] == 1 and result["protocol"]["group_by_length"] is False
    assert result["stages_s"]["supernet"] > 0 and result["stages_s"]["search"] > 0
    assert all(row["recovery_s"] > 0 for row in budget.values())
    assert result["throughput"]["rounds"] == 3 and result["unpruned"]["sentences_per_s_batch1"] > 0
    floor = json.loads((tmp_path / "work" / "seed0" / "floor" / "syne_prune.json").read_text())
    assert set(floor["heads_per_layer"]) == {1} and set(floor["neurons_per_layer"]) == {1} and result["throughput"]["floor_share_batch32"] > 0
    assert result["throughput"]["runtimes"] == ["torch", "onnxruntime"] and result["throughput"]["onnx_floor_share_batch1"] > 0
    for row in budget.values():  # timed side by side with the unpruned model, in both runtimes
        for prefix in ("", "onnx_"):
            for batch in (1, 32):
                speedup = row[f"{prefix}sentences_per_s_batch{batch}"] / result["unpruned"][f"{prefix}sentences_per_s_batch{batch}"]
                assert row[f"{prefix}speedup_per_mac_reduction_batch{batch}"] == pytest.approx(speedup * row["macs_ratio"])
    onnx_files = sorted(p.name for p in (tmp_path / "work" / "seed0" / "onnx").iterdir())
    assert onnx_files == ["0.60-layer_drop.onnx", "0.60-search.onnx", "floor.onnx", "unpruned.onnx"]
    untimed = {**result, "throughput": {**result["throughput"], "runtimes": ["torch"]}}  # timed another way: timed again, nothing else redone
    (tmp_path / "results" / "seed0.json").write_text(json.dumps(untimed))
    embedding_quality.main(argv)
    again = json.loads((tmp_path / "results" / "seed0.json").read_text())
    assert again["throughput"]["runtimes"] == ["torch", "onnxruntime"]
    assert again["budgets"]["0.60"]["search"]["dev_spearman_after_recovery"] == budget["search"]["dev_spearman_after_recovery"]
    assert (tmp_path / "work" / "seed0" / "supernet" / "supernet.json").stat().st_mtime_ns == stamp


def test_another_protocol_is_refused_before_anything_is_written(tmp_path, capsys):
    """Exit code 2 and one line naming the differing option, for a workdir and for a result file of another protocol;
    the recorded files stay as they were."""
    work, results = tmp_path / "work", tmp_path / "results"
    work.mkdir(), results.mkdir()
    base = {key: None for key in embedding_quality.PROTOCOL}
    (work / embedding_quality.PROTOCOL_FILE).write_text(json.dumps({**base, "epochs": 3}))
    (results / "seed0.json").write_text(json.dumps({"seed": 0, "budgets": {"0.50": {}}}))
    before = {p: p.read_text() for p in (work / embedding_quality.PROTOCOL_FILE, results / "seed0.json")}
    argv = ["--data-dir", str(tmp_path / "nowhere"), "--epochs", "1", "--seeds", "0", "--output", str(results)]
    with pytest.raises(SystemExit) as refused:
        embedding_quality.main([*argv, "--workdir", str(work)])
    assert refused.value.code == 2
    assert "epochs 3 there, 1 now" in capsys.readouterr().err
    fresh = tmp_path / "fresh"
    with pytest.raises(SystemExit) as refused:  # a fresh workdir, but the seed's results were written by another protocol
        embedding_quality.main([*argv, "--workdir", str(fresh)])
    assert refused.value.code == 2 and "--output" in capsys.readouterr().err
    assert not fresh.exists()  # neither the data files nor protocol.json written
    assert {p: p.read_text() for p in before} == before
