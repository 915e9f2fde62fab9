"""benchmarks/quality.py's yardstick: the share of the reference's gain over the best constant answer."""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

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
