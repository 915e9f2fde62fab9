"""Seconds per training step of an all-MiniLM-L6-v2-shaped BERT (random weights, batch 32 x 64 tokens, forward and
backward) with 1 and with 2 intra-op threads: what running a step's process on one thread costs (syne_prune/_threads.py).

    python benchmarks/torch_threads.py            # median of 6 steps for each thread count
"""
from __future__ import annotations

import statistics
import time

import torch
from transformers import BertConfig, BertForSequenceClassification


def step_seconds(threads: int, steps: int = 6) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6,
                                                     num_attention_heads=12, intermediate_size=1536))
    inputs, labels = torch.randint(0, 30000, (32, 64)), torch.randint(0, 2, (32,))
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        model(input_ids=inputs, labels=labels).loss.backward()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


if __name__ == "__main__":
    for threads in (1, 2, 1, 2):  # alternated, so that machine load hits both alike
        print(f"{threads} thread(s): {step_seconds(threads):.3f} s per step", flush=True)
