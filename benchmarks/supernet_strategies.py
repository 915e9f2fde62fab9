"""Super-network strategies on real all-MiniLM-L6-v2 weights and real GLUE data.

Part 1 (quality): train one super-network per strategy for the same epochs and report the validation
and test metric of its largest and smallest sub-network. Part 2 (cost): the time of one training
step of each strategy relative to `standard`, measured round-robin (strategy after strategy, several
rounds, medians), so machine drift hits all alike.

    HF_HUB_OFFLINE=1 python benchmarks/supernet_strategies.py --data-dir $GLUE_DIR \\
        --tasks mrpc stsb --strategies standard sandwich full --epochs 3 --max-train-examples 800

``--scale`` picks the models (cpu: all-MiniLM-L6-v2, gpu: bert-base-cased and roberta-base when their weights
load; benchmarks/scales.py), ``--seeds`` repeats part 1, and ``--workdir`` keeps every super-network
(``<workdir>/<model>/<task>/<strategy>/seed<k>``): a finished one is read back, an interrupted one resumed.
Part 1 is then also written as ``quality.csv``, ``quality.md`` and ``quality.png`` beside ``--out``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer

from syne_prune import InPlaceMask, get_family, get_search_space
from syne_prune.artifacts import SupernetDir
from syne_prune.data import data_loader, encode, get_task, load_task
from syne_prune.models import load_task_model
from syne_prune.models.local_weights import resolve_model
from syne_prune.supernet import STRATEGIES, TrainingConfig, get_strategy, train_supernet

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scales import SCALES, reachable_models, short_name  # noqa: E402

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def quality(args, task: str, strategy: str, workdir: Path, model: str = MODEL, seed: int | None = None) -> dict:
    seed = args.seed if seed is None else seed
    output = workdir / short_name(model) / task / strategy / f"seed{seed}"
    config = TrainingConfig(
        model=model, task=task, output=str(output), data_dir=args.data_dir,
        search_space=args.search_space, strategy=strategy, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
        max_train_examples=args.max_train_examples, max_eval_examples=args.max_eval_examples, seed=seed,
        teacher=None,  # the paper's strategies as such, as recorded in BENCHMARKS.md: no fixed teacher
    )
    finished = (output / "supernet.json").is_file() and not (output / ".resume").exists()
    if finished:
        metadata = SupernetDir(output).read()
    else:
        metadata = train_supernet(config, resume=(output / ".resume").exists(), progress=False)
    metric = metadata["metric"]
    row = {"model": short_name(model), "task": task, "strategy": strategy, "seed": seed, "metric": metric,
           "train_time_s": metadata["train_time_s"]}
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
    space = get_search_space(args.search_space, get_family(model.config).shape(model.config))
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
    parser.add_argument("--data-dir", help="GLUE TSV files (TASK/train.tsv, TASK/dev.tsv); default: the Hugging Face hub")
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
    parser.add_argument("--scale", choices=list(SCALES), help="models of part 1 (default: all-MiniLM-L6-v2 only)")
    parser.add_argument("--seeds", nargs="+", type=int, help="seeds of part 1 (default: --seed)")
    parser.add_argument("--workdir", type=Path, help="keep the super-networks here (resumable); default: a temporary directory")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/supernet_strategies.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, "costs": {}, "quality": []}
    for task in args.tasks:
        results["costs"][task] = step_costs(args, task)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    if not args.skip_quality:
        models = reachable_models(args.scale) if args.scale else [MODEL]
        with tempfile.TemporaryDirectory() as tmp:
            workdir = args.workdir or Path(tmp)
            for model in models:
                for task in args.tasks:
                    for strategy in args.strategies:
                        for seed in args.seeds or [args.seed]:
                            results["quality"].append(quality(args, task, strategy, workdir, model, seed))
                            args.out.write_text(json.dumps(results, indent=2) + "\n")  # written as results arrive
        write_quality(results["quality"], args.out)


def write_quality(rows: list[dict], out: Path) -> None:
    """quality.csv (one row per model, task, strategy, seed), quality.md (means over seeds) and quality.png."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    if frame.empty:
        return
    frame.to_csv(out.with_name("quality.csv"), index=False)
    columns = ["largest_validation", "largest_test", "smallest_validation", "smallest_test", "train_time_s"]
    table = frame.groupby(["model", "task", "strategy"])[columns].mean().reset_index()
    lines = ["| model | task | strategy | " + " | ".join(columns) + " |", "|---|---|---|" + "---|" * len(columns)]
    lines += [f"| {r.model} | {r.task} | {r.strategy} | " + " | ".join(f"{getattr(r, c):.4f}" for c in columns) + " |" for r in table.itertuples()]
    seeds = frame.groupby(["model", "task", "strategy"]).size().max()
    out.with_name("quality.md").write_text(f"Metric of the largest and smallest sub-network per strategy (mean over up to {seeds} seed(s)).\n\n"
                                           + "\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted(table.groupby(["model", "task"]).groups)
    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.5), squeeze=False)
    for ax, (model, task) in zip(axes[0], keys):
        part = table[(table["model"] == model) & (table["task"] == task)]
        x = np.arange(len(part))
        ax.bar(x - 0.2, part["largest_test"], 0.4, label="largest")
        ax.bar(x + 0.2, part["smallest_test"], 0.4, label="smallest")
        ax.set_xticks(x, part["strategy"], rotation=30, fontsize=8)
        ax.set_title(f"{model} / {task} (test metric)", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out.with_name("quality.png"), dpi=110)
    plt.close(fig)

if __name__ == "__main__":
    main()
