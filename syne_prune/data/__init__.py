"""Tasks, their data and their metrics: the paper's built-in tasks (``TASKS``) and the user's own files
(``TaskSpec``), of the kinds in ``TASK_TYPES`` (``TaskType``: head, encoding, losses, predictions), split into
train / validation / test (``load_task``), tokenized and batched (``encode``, ``eval_batches``), scored by a metric
from ``METRICS``."""
from __future__ import annotations

from .batches import EVAL_BATCH_SIZE, data_loader, encode, eval_batches, evaluation_batches, group_by_length, length_grouped_order, use_group_by_length
from .files import check_unchanged
from .load import TaskData, TaskLike, check_task, describe_spec, get_task, load_task, resolve_task, same_task, task_name, task_record
from .metrics import METRICS, Metric, get_metric
from .splits import Split, require_finite_scores
from .task_types import TASK_TYPES, TaskType, default_metrics, file_task_types, get_task_type, register_task_type, type_of_head
from .tasks import TASKS, Task, TaskSpec, synthetic_sentiment
from .travel import relocate, spec_files

__all__ = ["EVAL_BATCH_SIZE", "METRICS", "Metric", "Split", "TASKS", "TASK_TYPES", "Task", "TaskData", "TaskType",
           "default_metrics", "file_task_types", "get_task_type", "register_task_type", "type_of_head",
           "TaskLike", "TaskSpec", "check_task", "check_unchanged", "data_loader", "describe_spec", "encode", "eval_batches",
           "evaluation_batches", "get_metric", "group_by_length", "length_grouped_order", "use_group_by_length", "get_task", "load_task",
           "relocate", "require_finite_scores", "resolve_task", "same_task",
           "spec_files", "synthetic_sentiment", "task_name", "task_record"]
