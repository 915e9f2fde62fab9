"""Every built-in task's metric scores its task type (the model card, the search and `--metric` look it up by both)."""
from __future__ import annotations

import pytest

from syne_prune.data import TASKS, get_metric


@pytest.mark.parametrize("name", list(TASKS))
def test_the_metric_of_every_built_in_task_scores_its_task_type(name):
    task = TASKS[name]
    assert get_metric(task.metric_name, task.task_type).name == task.metric_name
