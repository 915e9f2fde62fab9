"""Examples as the model reads them: a split tokenized once (``encode``), then batched with dynamic padding
(``data_loader``, ``eval_batches``)."""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from .splits import Split
from .task_types import TASK_TYPES, TaskType, get_task_type, type_of_examples

EVAL_BATCH_SIZE = 32
"""Default batch size of every evaluation pass (see ``eval_batches``). On one CPU thread (MiniLM-L6, 128 RTE
examples of up to 128 tokens; BENCHMARKS.md, benchmarks/pool_vs_local.py), length-sorted batches of 32 took
0.49x the time of unsorted batches of 64 (16: 0.47x, 64 sorted: 0.65x). Not measured on a GPU, where larger
batches are likely faster (``--eval-batch-size``)."""


def encode(split: Split, tokenizer, max_length: int, task_type: TaskType | str | bool) -> list[dict]:
    """Tokenize a split once (truncated, unpadded) as its task type does (``TaskType.encode``); padding happens per
    batch in ``data_loader``. ``task_type``: a ``TaskType`` or its name (a bool: whether the task is a regression);
    a split with choices is multiple choice whatever it says."""
    kind = TASK_TYPES["multiple-choice"] if split.num_choices else get_task_type(task_type)
    return kind.encode(split, tokenizer, max_length)


def data_loader(examples: list[dict], tokenizer, batch_size: int, shuffle: bool = False, seed: int = 0, pin_memory: bool = False):
    """Batches with dynamic padding (each batch padded to its longest sequence; multiple choice: B x C x L), collated
    as the examples' task type does (``TaskType.collator``); ``pin_memory``: in page-locked memory, for copies to a
    GPU that do not block."""
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    collate = type_of_examples(examples).collator(tokenizer)
    return DataLoader(examples, batch_size=batch_size, shuffle=shuffle, generator=generator, collate_fn=collate,
                      pin_memory=pin_memory)


def _length(example: dict) -> int:
    ids = example["input_ids"]
    return max(map(len, ids)) if ids and isinstance(ids[0], list) else len(ids)


def eval_batches(examples: list[dict], tokenizer, batch_size: int = EVAL_BATCH_SIZE) -> list[dict]:
    """Batches for an inference pass, shortest examples first, so each batch pads to nearly its own length.

    Only for evaluation, whose metrics do not depend on the order of examples (timing: ``EVAL_BATCH_SIZE``)."""
    return list(data_loader(sorted(examples, key=_length), tokenizer, batch_size))


def evaluation_batches(split: Split | None, tokenizer, max_length: int, task_type: TaskType | str | bool,
                       batch_size: int = EVAL_BATCH_SIZE) -> list[dict] | None:
    """``split`` tokenized (``encode``) and batched for an inference pass (``eval_batches``); None for a split the
    task does not have (no test data), which ``syne_prune.evaluation.evaluate`` scores as None."""
    if split is None:
        return None
    return eval_batches(encode(split, tokenizer, max_length, task_type), tokenizer, batch_size)
