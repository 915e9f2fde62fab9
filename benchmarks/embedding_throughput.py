"""Embedding throughput of a seed's exported models, side by side: the throughput stage of ``embedding_quality.py``.

Every model embeds the same random 64-token sentences (batch 1 and 32) in two runtimes, PyTorch eager and ONNX Runtime
(encoder and pooling in one graph, as ``export --onnx`` writes it; written here under the seed's ``onnx/``), with the
same number of threads. Within a runtime the models are timed round-robin (one warm-up pass each, then ``rounds``
rounds that time every model once, each round starting one model later), so that a shared machine's drift hits all
alike; a model's number is the median of its rounds. ONNX Runtime's idle threads do not spin, so that one model's
waiting threads take no core from the next. Beside the unpruned model and the exports the *floor* is timed: every
layer kept with one head and one FFN neuron, whose time is the part of a forward pass that pruning heads and neurons
cannot remove (embedding lookup, layer norms, residual additions, pooling, the per-operation overhead of the runtime).

Speedup per MAC reduction = (unpruned time / export's time) x (export's MACs / unpruned MACs); 1.0 means an export is
exactly as much faster as its MAC count promises (``BENCHMARKS.md``, "Latency per MAC"). The MAC ratios are the
search's, counted at 128 tokens; at 64 tokens MiniLM's differ from them by about 0.01 (attention scores weigh less).
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from syne_prune.artifacts import SupernetDir
from syne_prune.embedding import EmbeddingModel, Pooling, export_embedding_subnetwork, load_encoder
from syne_prune.export import export_onnx, onnx_input_names
from syne_prune.models import get_family, load_tokenizer, resolve_model
from syne_prune.search_spaces import get_search_space

BATCH_SIZES = (1, 32)
SEQUENCE_LENGTH = 64
RUNTIMES = ("torch", "onnxruntime")
FIELD_PREFIX = {"torch": "", "onnxruntime": "onnx_"}  # runtime -> prefix of its fields in the results


def timing_record(rounds: int, threads: int) -> dict[str, Any]:
    """How a seed's models are timed (``result["throughput"]`` holds it with the measured floor shares): results timed
    another way are timed again."""
    return {"rounds": rounds, "batch_sizes": list(BATCH_SIZES), "sequence_length": SEQUENCE_LENGTH, "threads": threads,
            "runtimes": list(RUNTIMES), "timed": "side by side, round-robin, median per model"}


def is_timed(result: dict[str, Any], rounds: int, threads: int) -> bool:
    """Whether ``result`` was timed as ``timing_record(rounds, threads)`` says, every candidate of every budget included
    (a budget scored later makes the seed's models timed again, side by side)."""
    recorded = result.get("throughput", {})
    fields = [f"{FIELD_PREFIX[runtime]}sentences_per_s_batch{batch}" for runtime in RUNTIMES for batch in BATCH_SIZES]
    candidates = [info for entry in result["budgets"].values() for info in entry.values()]
    return (all(recorded.get(key) == value for key, value in timing_record(rounds, threads).items())
            and all(field in info for info in candidates for field in fields))


def round_robin_seconds(calls: dict[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    """Median seconds of each call (name -> a function of no arguments): one warm-up call each, then ``rounds`` rounds
    that call every function once, in turn, each round starting one function later."""
    for call in calls.values():
        call()
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for round_ in range(rounds):
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            call = calls[name]
            start = time.perf_counter()
            call()
            seconds[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in seconds.items()}


def random_sentences(vocab_size: int, batch_size: int, names: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """``batch_size`` sentences of ``SEQUENCE_LENGTH`` random token ids (int64, [batch, tokens]) under ``names``."""
    ids = torch.randint(5, vocab_size, (batch_size, SEQUENCE_LENGTH))
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}
    return {name: inputs[name] for name in names}


def torch_calls(models: dict[str, EmbeddingModel], inputs: dict[str, torch.Tensor]) -> dict[str, Callable[[], Any]]:
    """PyTorch eager forward passes (``inference_mode``) of every model on ``inputs``."""
    def call(model):
        def run():
            with torch.inference_mode():
                return model(**inputs)
        return run
    return {name: call(model) for name, model in models.items()}


def onnx_calls(paths: dict[str, Path], inputs: dict[str, torch.Tensor], threads: int) -> dict[str, Callable[[], Any]]:
    """ONNX Runtime (CPU, ``threads`` intra-op threads that do not spin when idle, all graph optimisations) runs of every
    ONNX file of ``paths`` on ``inputs``."""
    import onnxruntime  # optional: syne-prune[onnx]

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    feed = {name: np.ascontiguousarray(value.numpy()) for name, value in inputs.items()}

    def call(path):
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return lambda: session.run(None, feed)
    return {name: call(path) for name, path in paths.items()}


def floor_export(supernet: Path, output: Path) -> Path:
    """The unpruned model with every layer but one head and one FFN neuron per layer, exported (reused when complete)."""
    if (output / "syne_prune.json").is_file():
        return output
    source = resolve_model(SupernetDir(supernet).read()["model"])
    model = load_encoder(source)
    shape = get_family(model.config).shape(model.config)
    mask = get_search_space("small", shape).to_mask({"num_layers": shape.num_layers, "num_heads": 1, "num_units": 1})
    return export_embedding_subnetwork(model, mask, output, load_tokenizer(source), supernet, {"floor": True}, overwrite=True)


def onnx_file(model: EmbeddingModel, path: Path, source: str) -> Path:
    """``model`` (encoder + pooling, loaded from ``source``) as ONNX at ``path``, checked against PyTorch by
    ``export_onnx`` before it is moved there; reused unless ``source`` is an export written after it."""
    record = Path(source) / "syne_prune.json"
    if path.is_file() and not (record.is_file() and record.stat().st_mtime > path.stat().st_mtime):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".partial.onnx")
    export_onnx(model, staging)
    staging.replace(path)
    return path


def measure(args: argparse.Namespace, work: Path, result: dict[str, Any], exports: dict[str, Path], pooling: Pooling) -> None:
    """Time the unpruned model (``args.model``), the floor and ``exports`` (``"{budget}/{candidate}"`` -> directory, the
    key naming ``result["budgets"][budget][candidate]``), ``args.throughput_rounds`` rounds on ``args.threads`` threads.
    Writes ``{prefix}sentences_per_s_batch{B}`` into ``result["unpruned"]`` and every candidate, the candidates'
    ``{prefix}speedup_per_mac_reduction_batch{B}`` (prefix ``""`` for PyTorch, ``"onnx_"`` for ONNX Runtime), and
    ``result["throughput"]``: ``timing_record`` with ``{prefix}floor_share_batch{B}``, the floor's time over the
    unpruned model's. ONNX files are written under ``work / "onnx"``."""
    sources = {"unpruned": args.model, "floor": str(floor_export(work / "supernet", work / "floor")),
               **{name: str(directory) for name, directory in exports.items()}}
    models = {name: EmbeddingModel(load_encoder(resolve_model(source)), pooling).eval() for name, source in sources.items()}
    paths = {name: onnx_file(model, work / "onnx" / f"{name.replace('/', '-')}.onnx", sources[name]) for name, model in models.items()}
    names = onnx_input_names(models["unpruned"].config)
    vocab = min(model.config.vocab_size for model in models.values())
    timing = timing_record(args.throughput_rounds, args.threads)
    for runtime in RUNTIMES:
        prefix = FIELD_PREFIX[runtime]
        for batch in BATCH_SIZES:
            inputs = random_sentences(vocab, batch, names)
            calls = torch_calls(models, inputs) if runtime == "torch" else onnx_calls(paths, inputs, args.threads)
            speed = {name: batch / seconds for name, seconds in round_robin_seconds(calls, args.throughput_rounds).items()}
            timing[f"{prefix}floor_share_batch{batch}"] = speed["unpruned"] / speed["floor"]
            result["unpruned"][f"{prefix}sentences_per_s_batch{batch}"] = speed["unpruned"]
            for name in exports:
                budget, candidate = name.split("/")
                info = result["budgets"][budget][candidate]
                info[f"{prefix}sentences_per_s_batch{batch}"] = speed[name]
                info[f"{prefix}speedup_per_mac_reduction_batch{batch}"] = speed[name] / speed["unpruned"] * info["macs_ratio"]
    result["throughput"] = timing
