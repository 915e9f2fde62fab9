"""benchmarks/embedding_throughput.py without models: the round-robin timing calls every model once per round, each
round starting one model later, and a seed counts as timed only when every candidate of every budget carries both
runtimes' numbers under the recorded timing."""
from __future__ import annotations

import embedding_throughput  # benchmarks/ is on sys.path (pytest.ini)


def test_round_robin_calls_every_model_once_per_round_starting_one_later():
    order: list[str] = []
    calls = {name: (lambda name=name: order.append(name)) for name in ("a", "b", "c")}
    seconds = embedding_throughput.round_robin_seconds(calls, rounds=4)
    assert order[:3] == ["a", "b", "c"]  # the warm-up
    assert order[3:] == ["a", "b", "c", "b", "c", "a", "c", "a", "b", "a", "b", "c"]
    assert set(seconds) == {"a", "b", "c"} and all(value >= 0 for value in seconds.values())


def test_a_seed_is_timed_only_with_every_candidate_in_both_runtimes():
    fields = {f"{prefix}sentences_per_s_batch{batch}": 1.0 for prefix in ("", "onnx_") for batch in (1, 32)}
    result = {"throughput": embedding_throughput.timing_record(21, 2), "budgets": {"0.50": {"search": dict(fields), "layer_drop": dict(fields)}}}
    assert embedding_throughput.is_timed(result, 21, 2)
    assert not embedding_throughput.is_timed(result, 5, 2)  # other rounds
    assert not embedding_throughput.is_timed(result, 21, 1)  # other threads
    result["budgets"]["0.33"] = {"search": {"macs_ratio": 0.3}}  # a budget scored after the timing
    assert not embedding_throughput.is_timed(result, 21, 2)
    result["budgets"]["0.33"]["search"] = {key: value for key, value in fields.items() if not key.startswith("onnx_")}
    assert not embedding_throughput.is_timed(result, 21, 2)  # PyTorch's numbers only
    old = {"throughput": {"rounds": 21}, "budgets": {}}  # timed before ONNX Runtime was
    assert not embedding_throughput.is_timed(old, 21, 2)
