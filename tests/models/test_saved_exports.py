"""Exports written by an earlier syne-prune (``tests/fixtures/exports_v1``, README there) load with the current
pruned classes, by model type and class name, to the outputs recorded when they were written."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers

import syne_prune  # noqa: F401 - registers the pruned classes with the Auto classes

EXPORTS = Path(__file__).resolve().parents[1] / "fixtures" / "exports_v1"
NAMES = sorted(path.name for path in EXPORTS.iterdir() if path.is_dir())


def test_every_family_has_a_saved_export():
    from syne_prune.models import FAMILIES

    types = {json.loads((EXPORTS / name / "config.json").read_text())["model_type"] for name in NAMES}
    assert types == {family.pruned_model_type for family in FAMILIES.values()}


@pytest.mark.parametrize("name", NAMES)
def test_saved_export_loads_to_the_recorded_outputs(name):
    expected = json.loads((EXPORTS / name / "expected.json").read_text())
    model = getattr(transformers, expected["auto_class"]).from_pretrained(EXPORTS / name).eval()
    assert type(model).__name__ == expected["class"] and type(model).__module__.startswith("syne_prune.models.")
    inputs = {key: torch.tensor(value) for key, value in expected["inputs"].items()}
    with torch.inference_mode():
        result = model(**inputs)
    got = result.last_hidden_state if expected["auto_class"] == "AutoModel" else result.logits
    assert (got - torch.tensor(expected["outputs"])).abs().max().item() <= 1e-5
