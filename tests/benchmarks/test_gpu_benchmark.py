"""benchmarks/gpu.py: its CPU dry run (a tiny random BERT in every section) writes a result for each section."""
from __future__ import annotations

import json

import gpu  # benchmarks/ is on sys.path (pytest.ini)
import pytest


@pytest.mark.slow
def test_the_dry_run_measures_every_section_on_the_cpu(tmp_path):
    out = tmp_path / "gpu.json"
    result = gpu.main(["--device", "cpu", "--tiny", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result, default=str))
    sections = result["sections"]
    assert result["meta"]["device"] == "cpu" and result["meta"]["default_precision"] == "fp32"
    assert not [name for name, section in sections.items() if "rows" not in section], sections
    assert [(r["precision"], r["examples_per_s"] > 0) for r in sections["throughput"]["rows"]] == [("fp32", True), ("bf16", True)]
    assert [r["workers"] for r in sections["pool"]["rows"]] == [1, 2] and all(r["worker_gpus"] == [None] * r["workers"]
                                                                          for r in sections["pool"]["rows"])
    latency = sections["latency"]["rows"]
    assert {r["runtime"] for r in latency} == {"torch-fp32", "onnxruntime-cpu"} and {r["fraction"] for r in latency} == {1.0, 0.5, 0.25}
    assert all(r["macs_ratio"] < 1 for r in latency if r["fraction"] < 1)
    recipe = sections["recipe"]["rows"]
    assert set(recipe["stage_times"]) == {"teacher_and_supernet_s", "search_s", "export_s", "recovery_s"}
    assert recipe["compute"] == {"precision": "fp32", "device": "cpu"}
