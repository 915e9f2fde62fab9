"""Super-network strategies on real all-MiniLM-L6-v2 weights and real GLUE data.

Part 1 (quality): train one super-network per strategy for the same epochs and report the validation
and test metric of its largest and smallest sub-network. Part 2 (cost): the time of one training
step of each strategy relative to `standard`, measured round-robin (strategy after strategy, several
rounds, medians), so machine drift hits all alike.

    HF_HUB_OFFLINE=1 python benchmarks/supernet_strategies.py --data-dir ../shared/data/glue \\
        --tasks mrpc stsb --strategies standard sandwich full --epochs 3 --max-train-examples 800
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer

from syne_prune import InPlaceMask, get_architecture, get_search_space
from syne_prune.data import data_loader, encode, get_task, load_task
from syne_prune.models import load_task_model
from syne_prune.models.local_weights import resolve_model
from syne_prune.supernet import STRATEGIES, TrainingConfig, get_strategy, train_supernet

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def quality(args, task: str, strategy: str, workdir: Path) -> dict:
    config = TrainingConfig(
        model=MODEL, task=task, output=str(workdir / f"{task}-{strategy}"), data_dir=args.data_dir,
        search_space=args.search_space, strategy=strategy, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
        max_train_examples=args.max_train_examples, max_eval_examples=args.max_eval_examples, seed=args.seed,
    )
    metadata = train_supernet(config, progress=False)
    metric = metadata["metric"]
    row = {"task": task, "strategy": strategy, "metric": metric, "train_time_s": metadata["train_time_s"]}
    for name in ("largest", "smallest"):
        for split in ("validation", "test"):
            row[f"{name}_{split}"] = metadata["metrics"][name][split][metric]
    print(json.dumps(row), flush=True)
    return row


def step_costs(args, task_name: str) -> dict[str, float]:
    """Median seconds per training step of each strategy, timed round-robin on the same batches."""
    task = get_task(task_name)
    data = load_task(task_name, args.data_dir, max_train_examples=args.batch_size * args.timing_steps, seed=args.seed)
    path = resolve_model(MODEL)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = load_task_model(path, task).train()
    batches = list(data_loader(encode(data.train, tokenizer, 128, task.is_regression), tokenizer, args.batch_size))
    space = get_search_space(args.search_space, get_architecture(model.config).shape(model.config))
    masker = InPlaceMask(model)
    strategies = {
        name: get_strategy(name)(space, masker, np.random.RandomState(0), task.is_regression, total_steps=2 * len(batches))
        for name in STRATEGIES
    }
    times: dict[str, list[float]] = {name: [] for name in STRATEGIES}
    for round_ in range(args.timing_rounds + 1):
        for name, strategy in strategies.items():
            start = time.perf_counter()
            for step, batch in enumerate(batches):
                strategy(model, batch, len(batches) // 2 + step)  # mid-training for random_linear (p = 0.5)
                model.zero_grad(set_to_none=True)
            if round_ > 0:  # round 0 warms up
                times[name].append((time.perf_counter() - start) / len(batches))
    medians = {name: statistics.median(t) for name, t in times.items()}
    relative = {name: medians[name] / medians["standard"] for name in medians}
    print(task_name, json.dumps({k: round(v, 2) for k, v in relative.items()}), flush=True)
    return {"median_step_s": medians, "relative_to_standard": relative, "times_s": times}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="../shared/data/glue")
    parser.add_argument("--tasks", nargs="+", default=["mrpc", "stsb"])
    parser.add_argument("--strategies", nargs="+", default=["standard", "sandwich", "full"])
    parser.add_argument("--search-space", default="small")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-train-examples", type=int, default=800)
    parser.add_argument("--max-eval-examples", type=int, default=400)
    parser.add_argument("--timing-steps", type=int, default=4)
    parser.add_argument("--timing-rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/supernet_strategies.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {"args": vars(args) | {"out": str(args.out)}, "costs": {}, "quality": []}
    for task in args.tasks:
        results["costs"][task] = step_costs(args, task)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    if not args.skip_quality:
        with tempfile.TemporaryDirectory() as tmp:
            for task in args.tasks:
                for strategy in args.strategies:
                    results["quality"].append(quality(args, task, strategy, Path(tmp)))
                    args.out.write_text(json.dumps(results, indent=2) + "\n")  # written as results arrive


if __name__ == "__main__":
    main()
