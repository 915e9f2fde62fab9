"""Examples as the model reads them: a split tokenized once (``encode``), then batched with dynamic padding
(``data_loader``, ``eval_batches``)."""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader
from transformers import DataCollatorForMultipleChoice, DataCollatorWithPadding

from .splits import Split

EVAL_BATCH_SIZE = 32
"""Default batch size of every evaluation pass (see ``eval_batches``). On one CPU thread (MiniLM-L6, 128 RTE
examples of up to 128 tokens; BENCHMARKS.md, benchmarks/pool_vs_local.py), length-sorted batches of 32 took
0.49x the time of unsorted batches of 64 (16: 0.47x, 64 sorted: 0.65x). Not measured on a GPU, where larger
batches are likely faster (``--eval-batch-size``)."""


def encode(split: Split, tokenizer, max_length: int, is_regression: bool) -> list[dict]:
    """Tokenize a split once (truncated, unpadded); padding happens per batch in ``data_loader``.

    Multiple choice: one (context, start + ending) pair per choice; each example's fields are lists
    with one entry per choice."""
    label_type = float if is_regression else int
    if split.num_choices:
        contexts, starts, *endings = split.texts
        first = [context for context in contexts for _ in endings]
        second = [f"{starts[i]} {ending[i]}".strip() for i in range(len(split)) for ending in endings]
        encoded = tokenizer(first, second, truncation=True, max_length=max_length)
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]
        c = len(endings)
        return [{**{k: encoded[k][i * c:(i + 1) * c] for k in keys}, "labels": int(split.labels[i])} for i in range(len(split))]
    encoded = tokenizer(*split.texts, truncation=True, max_length=max_length)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]
    labels = [label_type(v) for v in split.labels.tolist()]  # Python numbers, as the collator expects
    return [dict(zip((*keys, "labels"), row)) for row in zip(*(encoded[k] for k in keys), labels)]


def data_loader(examples: list[dict], tokenizer, batch_size: int, shuffle: bool = False, seed: int = 0, pin_memory: bool = False):
    """Batches with dynamic padding (each batch padded to its longest sequence; multiple choice: B x C x L);
    ``pin_memory``: in page-locked memory, for copies to a GPU that do not block."""
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    multiple_choice = bool(examples) and isinstance(examples[0]["input_ids"][0], list)
    collate = (DataCollatorForMultipleChoice if multiple_choice else DataCollatorWithPadding)(tokenizer)
    return DataLoader(examples, batch_size=batch_size, shuffle=shuffle, generator=generator, collate_fn=collate,
                      pin_memory=pin_memory)


def _length(example: dict) -> int:
    ids = example["input_ids"]
    return max(map(len, ids)) if ids and isinstance(ids[0], list) else len(ids)


def eval_batches(examples: list[dict], tokenizer, batch_size: int = EVAL_BATCH_SIZE) -> list[dict]:
    """Batches for an inference pass, shortest examples first, so each batch pads to nearly its own length.

    Only for evaluation, whose metrics do not depend on the order of examples (timing: ``EVAL_BATCH_SIZE``)."""
    return list(data_loader(sorted(examples, key=_length), tokenizer, batch_size))


def evaluation_batches(split: Split | None, tokenizer, max_length: int, is_regression: bool,
                       batch_size: int = EVAL_BATCH_SIZE) -> list[dict] | None:
    """``split`` tokenized (``encode``) and batched for an inference pass (``eval_batches``); None for a split the
    task does not have (no test data), which ``syne_prune.evaluation.evaluate`` scores as None."""
    if split is None:
        return None
    return eval_batches(encode(split, tokenizer, max_length, is_regression), tokenizer, batch_size)
