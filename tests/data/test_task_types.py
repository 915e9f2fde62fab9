"""The registry of task types: every type recognises the head it gives a model, the built-in tasks keep their types,
and predictions and labels of every type come back from ``predict`` joined in batch order."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import BertConfig

from syne_prune.data import TASK_TYPES, TASKS, file_task_types, get_task_type, type_of_head


@pytest.mark.parametrize("name", list(TASK_TYPES))
def test_every_type_recognises_the_head_it_gives_a_model(name):
    kind = TASK_TYPES[name]
    for names in ((), ("x", "y", "z")):
        config = BertConfig(**kind.model_kwargs(3, names))
        assert type_of_head(kind.auto_class, config) is kind, (name, names)
        if names and "id2label" in kind.model_kwargs(3, names):
            assert config.num_labels == 3 and config.id2label == {0: "x", 1: "y", 2: "z"}
    assert type_of_head("AutoModel", BertConfig()) is None


def test_built_in_tasks_keep_their_types_and_bools_name_regression_or_classification():
    assert {name: task.task_type for name, task in TASKS.items() if name in ("rte", "stsb", "swag")} == {
        "rte": "classification", "stsb": "regression", "swag": "multiple-choice"}
    assert get_task_type(True).name == "regression" and get_task_type(False).name == "classification"
    assert file_task_types() == ["classification", "regression", "multi-label", "token-classification"]


@pytest.mark.parametrize("name, logits, labels, predicted", [
    ("classification", [[0.1, 0.9], [2.0, -1.0]], [1, 1], [1, 0]),
    ("regression", [[0.25], [-1.5]], [0.5, 1.0], [0.25, -1.5]),
    ("multi-label", [[0.1, -0.2], [-3.0, 4.0]], [[1.0, 0.0], [0.0, 1.0]], [[1, 0], [0, 1]]),
])
def test_sequence_predictions_from_logits(name, logits, labels, predicted):
    kind = TASK_TYPES[name]
    p, y = kind.batch_outputs(torch.tensor(logits), torch.tensor(labels))
    joined = kind.join([p, p])
    assert np.allclose(p, predicted) and np.allclose(y, labels) and len(joined) == 2 * len(logits)
