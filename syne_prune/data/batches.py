"""Examples as the model reads them: a split tokenized once (``encode``), then batched with dynamic padding
(``data_loader``, ``eval_batches``)."""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import DataLoader

from syne_prune.devices import default_device, scoped_environment

from .splits import Split
from .task_types import TASK_TYPES, TaskType, get_task_type, type_of_examples

EVAL_BATCH_SIZE = 32
"""Default batch size of every evaluation pass (see ``eval_batches``). On one CPU thread (MiniLM-L6, 128 RTE
examples of up to 128 tokens; BENCHMARKS.md, benchmarks/pool_vs_local.py), length-sorted batches of 32 took
0.49x the time of unsorted batches of 64 (16: 0.47x, 64 sorted: 0.65x). Not measured on a GPU, where larger
batches are likely faster (``--eval-batch-size``)."""
GROUP_BY_LENGTH_ENV = "SYNE_PRUNE_GROUP_BY_LENGTH"  # "1": training batches of similar length (``use_group_by_length``)
MEGABATCH_BATCHES = 50  # batches per megabatch of ``length_grouped_order`` (transformers' group_by_length uses 50)


def encode(split: Split, tokenizer, max_length: int, task_type: TaskType | str | bool) -> list[dict]:
    """Tokenize a split once (truncated, unpadded) as its task type does (``TaskType.encode``); padding happens per
    batch in ``data_loader``. ``task_type``: a ``TaskType`` or its name (a bool: whether the task is a regression);
    a split with choices is multiple choice whatever it says."""
    kind = TASK_TYPES["multiple-choice"] if split.num_choices else get_task_type(task_type)
    return kind.encode(split, tokenizer, max_length)


def data_loader(examples: list[dict], tokenizer, batch_size: int, shuffle: bool = False, seed: int = 0, pin_memory: bool = False,
                group_by_length: bool = False):
    """Batches with dynamic padding (each batch padded to its longest sequence; multiple choice: B x C x L), collated
    as the examples' task type does (``TaskType.collator``); ``shuffle``: a new order per ``seed``, with
    ``group_by_length`` one of batches of similar length (``length_grouped_order``); ``pin_memory``: in page-locked
    memory, for copies to a GPU that do not block."""
    collate = type_of_examples(examples).collator(tokenizer)
    if shuffle and group_by_length:
        order = length_grouped_order([_length(e) for e in examples], batch_size, torch.Generator().manual_seed(seed))
        return DataLoader(examples, batch_size=batch_size, sampler=order, collate_fn=collate, pin_memory=pin_memory)
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(examples, batch_size=batch_size, shuffle=shuffle, generator=generator, collate_fn=collate,
                      pin_memory=pin_memory)


def length_grouped_order(lengths: Sequence[int], batch_size: int, generator: torch.Generator,
                         megabatch_batches: int = MEGABATCH_BATCHES) -> list[int]:
    """A training order of the examples whose consecutive ``batch_size`` slices hold examples of similar length, so
    that dynamic padding pads little, while the epoch stays random (the megabatch scheme of transformers'
    ``group_by_length``): a random permutation is cut into megabatches of ``megabatch_batches * batch_size``
    examples, each sorted longest first and cut into batches; the batches are shuffled, and the one with the longest
    example goes first (a batch that does not fit a GPU fails at once). ``lengths``: tokens per example. Returns every
    index exactly once; the number of batches is ceil(N / batch_size), as with a plain shuffle."""
    n = len(lengths)
    permutation = torch.randperm(n, generator=generator).tolist()
    size = megabatch_batches * batch_size
    batches = []
    for start in range(0, n, size):
        megabatch = sorted(permutation[start:start + size], key=lambda i: -lengths[i])
        batches += [megabatch[i:i + batch_size] for i in range(0, len(megabatch), batch_size)]
    batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
    if batches:
        first = max(range(len(batches)), key=lambda b: lengths[batches[b][0]])
        batches[0], batches[first] = batches[first], batches[0]
    return [index for batch in batches for index in batch]


def group_by_length() -> bool:
    """Whether the run's training batches group examples of similar length (``--group-by-length``, carried to the
    processes a run starts by ``GROUP_BY_LENGTH_ENV``; see ``use_group_by_length``)."""
    return os.environ.get(GROUP_BY_LENGTH_ENV, "") == "1"


@contextlib.contextmanager
def use_group_by_length(enabled: bool | None) -> Iterator[None]:
    """Train with batches of similar length inside the block (and in every process started inside) when ``enabled``;
    None or False keeps the enclosing choice."""
    if not enabled:
        yield
        return
    with scoped_environment({GROUP_BY_LENGTH_ENV: "1"}):
        yield


def _length(example: dict) -> int:
    ids = example["input_ids"]
    return max(map(len, ids)) if ids and isinstance(ids[0], list) else len(ids)


def eval_batches(examples: list[dict], tokenizer, batch_size: int = EVAL_BATCH_SIZE, pin_memory: bool | None = None) -> list[dict]:
    """Batches for an inference pass, shortest examples first, so each batch pads to nearly its own length.

    Only for evaluation, whose metrics do not depend on the order of examples (timing: ``EVAL_BATCH_SIZE``).
    ``pin_memory`` (None: when the run's device is a GPU, ``devices.default_device``): the batches live in
    page-locked memory, so the copies of every later pass over them to the GPU do not block."""
    if pin_memory is None:
        pin_memory = default_device().type == "cuda"
    return list(data_loader(sorted(examples, key=_length), tokenizer, batch_size, pin_memory=pin_memory))


def evaluation_batches(split: Split | None, tokenizer, max_length: int, task_type: TaskType | str | bool,
                       batch_size: int = EVAL_BATCH_SIZE) -> list[dict] | None:
    """``split`` tokenized (``encode``) and batched for an inference pass (``eval_batches``); None for a split the
    task does not have (no test data), which ``syne_prune.evaluation.evaluate`` scores as None."""
    if split is None:
        return None
    return eval_batches(encode(split, tokenizer, max_length, task_type), tokenizer, batch_size)
