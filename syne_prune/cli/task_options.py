"""The options that say which task a command works on, shared by ``train-supernet``, ``prune``, ``quickstart`` and
``search --trial-kind standard``: a built-in ``--task`` (with ``--data-dir``), or the user's own data
(``--train-file`` ... or ``--dataset``), read into a ``syne_prune.data.TaskSpec``."""
from __future__ import annotations

import argparse
from typing import Any

from syne_prune.data import METRICS, TASKS, TaskSpec, default_metrics, file_task_types
from syne_prune.embedding import EMBEDDING
from syne_prune.errors import SynePruneError
from syne_prune.options import comma_list

_FILES = ("train_file", "validation_file", "test_file", "dataset")
_SHAPE = ("text_columns", "label_column", "task_type", "metric")


def add_task_options(parser: argparse.ArgumentParser, task_help: str, data_dir_help: str | None) -> None:
    """Add ``--task``/``--data-dir`` and the own-data options to ``parser`` (a group titled "task and data");
    ``data_dir_help`` None: the command has its own ``--data-dir``."""
    group = parser.add_argument_group("task and data", "a built-in --task, or your own data: --train-file (+ --validation-file, "
                                      "--test-file) or --dataset")
    group.add_argument("--task", choices=list(TASKS), help=task_help)
    if data_dir_help is not None:
        group.add_argument("--data-dir", help=data_dir_help)
    group.add_argument("--train-file", help="your training data: CSV, TSV, JSON, JSON Lines, Parquet or CoNLL (.conll) (by suffix)")
    group.add_argument("--validation-file", help="your validation data (default: a seeded --validation-fraction share of the train file)")
    group.add_argument("--test-file", help="your test data; without it no test metric is reported (default: none)")
    group.add_argument("--dataset", help="a datasets.DatasetDict saved with save_to_disk (splits train, validation, test), or a hub id")
    group.add_argument("--text-columns", metavar="A[,B]", help="one text column or a pair (default: text, or sentence1,sentence2, "
                       "or else the one or two string columns besides the label)")
    group.add_argument("--label-column", default="label", help="the column of the labels")
    group.add_argument("--task-type", choices=[*file_task_types(), EMBEDDING], help="what the labels are (default: inferred: whole "
                       "numbers or strings mean classification, other numbers regression, lists of labels multi-label, a list of "
                       "tags beside a list of words token-classification); embedding: a sentence-embedding model distilled on "
                       "--train-file's sentences, no labels (docs/embedding-models.md)")
    group.add_argument("--metric", choices=list(METRICS), help="the metric the search's error objective is 1 minus (default: "
                       + ", ".join(f"{t} {m}" for t, m in default_metrics().items()) + ")")


def task_from_args(args: argparse.Namespace, default: str | None = None, required: bool = True) -> str | TaskSpec | None:
    """The task the parsed options name: ``args.task``, a ``TaskSpec`` of the own-data options, or ``default``
    when neither is given (``required=False``: None then). Raises ``SynePruneError`` for both at once, neither
    (when required, without a default), or own-data shape options without own data."""
    own = {name: getattr(args, name) for name in _FILES if getattr(args, name, None) is not None}
    shape: dict[str, Any] = {name: getattr(args, name) for name in _SHAPE if getattr(args, name, None) not in (None, "label")}
    if own and args.task is not None:
        raise SynePruneError("give either --task or your own data (--train-file / --dataset), not both")
    if own and getattr(args, "data_dir", None):
        raise SynePruneError("--data-dir holds GLUE files of a built-in --task; with your own data drop it")
    if not own:
        if shape:
            raise SynePruneError(f"--{next(iter(shape)).replace('_', '-')} describes your own data; add --train-file or --dataset")
        if args.task is None and default is None and required:
            raise SynePruneError("give a built-in --task or your own data (--train-file / --dataset)")
        return args.task or default
    if "text_columns" in shape:
        shape["text_columns"] = comma_list(shape["text_columns"])
    shape["label_column"] = args.label_column
    return TaskSpec(**own, **shape)
