"""EHVI, MOREA and random search on real all-MiniLM-L6-v2 super-networks (MRPC, STS-B).

Per task: train one super-network (or reuse ``--supernet-dir/TASK`` if it is there), then run every
scheduler on it with the same seed, trial budget and workers (pool backend). Reported per search:
hypervolume (error, parameter ratio; reference point 1, 1), the per-trial time split into start-up +
loading (the pool worker's one-off start-up and per-trial hand-over) and evaluation, and the quality
kept by the best sub-network (best validation error; its test metric too) with at most 75% and at
most 50% of the prunable encoder parameters. Each search's ``pareto.png`` is copied to
``--plots``.

    HF_HUB_OFFLINE=1 python benchmarks/search_schedulers.py --data-dir $GLUE_DIR \\
        --tasks mrpc stsb --schedulers ehvi morea random --trials 100 --supernet-dir /tmp/supernets \\
        --out benchmarks/results/search_schedulers.json --plots benchmarks/results/plots
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pandas as pd

from syne_prune import get_family, get_search_space
from syne_prune.objectives import subnet_size
from syne_prune.search import SearchConfig, WeightSharingSettings, run_search
from syne_prune.supernet import TrainingConfig, load_supernet, train_supernet

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def supernet(args, task: str) -> Path:
    out = Path(args.supernet_dir) / task
    if (out / "supernet.json").is_file():
        return out
    config = TrainingConfig(model=MODEL, task=task, output=str(out), data_dir=args.data_dir, search_space=args.search_space,
                            strategy=args.strategy, epochs=args.epochs, lr=args.lr, max_train_examples=args.max_train_examples,
                            max_eval_examples=args.max_eval_examples, seed=args.seed,
                            teacher=None)  # as recorded in BENCHMARKS.md: no fixed teacher
    metadata = train_supernet(config, overwrite=True, progress=False)
    print(task, "super-network trained in", round(metadata["train_time_s"]), "s", flush=True)
    return out


def best_under(trials: pd.DataFrame, limit: float) -> dict | None:
    eligible = trials[trials["prunable"] <= limit + 1e-9]
    if eligible.empty:
        return None
    row = eligible.sort_values(["error", "params"]).iloc[0]
    return {"trial_id": int(row["trial_id"]), "prunable": float(row["prunable"]), "params": float(row["params"]),
            "valid_metric": 1 - float(row["error"]), "test_metric": 1 - float(row["test_error"])}


def search(args, task: str, net: Path, scheduler: str) -> dict:
    out = Path(args.workdir) / f"{task}-{scheduler}"
    summary = run_search(SearchConfig(trial_settings=WeightSharingSettings(str(net)), output=str(out), scheduler=scheduler, n_workers=args.workers,
                                      max_trials=args.trials, seed=args.seed, data_dir=args.data_dir,
                                      max_eval_examples=args.max_eval_examples, test_split="every-trial"),
                         overwrite=True, progress=False)  # every trial's test error: the best under each size limit
    trials = pd.read_csv(out / "trials.csv")
    done = trials[trials["status"] == "completed"].copy()
    loaded = load_supernet(net)
    model = loaded.model
    space = get_search_space(loaded.metadata["search_space"], get_family(model.config).shape(model.config))
    full = subnet_size(model).encoder_params
    names = list(space.config_space)
    done["prunable"] = [subnet_size(model, space.to_mask({n: int(r[n]) for n in names})).encoder_params / full
                        for r in done.to_dict("records")]
    workers = json.loads((out / "syne-tune" / "part-0" / "pool" / "workers.json").read_text())
    if args.plots:
        Path(args.plots).mkdir(parents=True, exist_ok=True)
        shutil.copy(out / "pareto.png", Path(args.plots) / f"{task}-{scheduler}.png")
    row = {
        "task": task, "scheduler": scheduler, "metric": loaded.metadata["metric"], "trials": len(trials),
        "completed": len(done), "failed": int((trials["status"] == "failed").sum()),
        "hypervolume": summary["hypervolume"], "pareto_size": summary["pareto_size"], "wall_s": summary["wallclock_s"],
        "scheduler_suggest_s": summary["scheduler_cost"]["suggest_s"], "repeats_rejected": summary["scheduler_cost"]["repeats_rejected"],
        "worker_startup_s": [w["startup_s"] for w in workers["workers"]],
        "median_handover_s": float(trials["setup_s"].median()), "median_eval_s": float(trials["eval_s"].median()),
        "summed_eval_s": float(trials["eval_s"].sum()),
        "unpruned": {"valid_metric": 1 - summary["unpruned"]["validation_error"], "test_metric": 1 - summary["unpruned"]["test_error"]},
        "best_at_75": best_under(done, 0.75), "best_at_50": best_under(done, 0.50),
    }
    print(json.dumps(row), flush=True)
    return row


def compare_plot(args, task: str, schedulers: list[str]) -> None:
    """One figure per task: every scheduler's validation Pareto front, and hypervolume against trials."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from syne_prune.pareto import hypervolume, pareto_set

    fig, (front_ax, hv_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
    for scheduler in schedulers:
        trials = pd.read_csv(Path(args.workdir) / f"{task}-{scheduler}" / "trials.csv").sort_values("trial_id")
        done = trials[trials["status"] == "completed"]
        front = pareto_set(done, ["error", "params"], int(done["fidelity"].max()))
        line = front_ax.step(front["params"], front["error"], where="post", marker="o", ms=3, label=scheduler)[0]
        points = done[["error", "params"]].to_numpy(dtype=float)
        curve = [hypervolume(points[:n]) for n in range(1, len(points) + 1)]
        hv_ax.plot(np.arange(1, len(curve) + 1), curve, color=line.get_color(), label=scheduler)
    front_ax.set(xlabel="parameters (ratio to the unpruned model)", ylabel="validation error (1 - metric)",
                 title=f"{task}: Pareto fronts, {args.trials} trials each")
    hv_ax.set(xlabel="trials (in the order they were started)", ylabel="hypervolume (reference point 1, 1)",
              title=f"{task}: hypervolume against trials")
    for ax in (front_ax, hv_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(Path(args.plots) / f"{task}-schedulers.png", dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="GLUE TSV files (TASK/train.tsv, TASK/dev.tsv); default: the Hugging Face hub")
    parser.add_argument("--tasks", nargs="+", default=["mrpc", "stsb"])
    parser.add_argument("--schedulers", nargs="+", default=["ehvi", "morea", "random"])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--search-space", default="small")
    parser.add_argument("--strategy", default="sandwich")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--max-train-examples", type=int, default=2000)
    parser.add_argument("--max-eval-examples", type=int, default=400)
    parser.add_argument("--supernet-dir", required=True)
    parser.add_argument("--workdir", default="/tmp/search_schedulers")
    parser.add_argument("--plots")
    parser.add_argument("--out", required=True)
    parser.add_argument("--plots-only", action="store_true", help="redraw the comparison plots from --workdir and stop")
    args = parser.parse_args()
    if args.plots_only:
        for task in args.tasks:
            compare_plot(args, task, args.schedulers)
        return
    rows, supernets = [], {}
    for task in args.tasks:
        net = supernet(args, task)
        metadata = load_supernet(net).metadata
        supernets[task] = {key: metadata.get(key) for key in ("strategy", "hyperparameters", "num_train_examples", "train_time_s", "metrics")}
        for scheduler in args.schedulers:
            rows.append(search(args, task, net, scheduler))
            recorded = dict(vars(args), data_dir="$GLUE_DIR" if args.data_dir else None)  # a record names no machine's path
            result = {"args": recorded, "supernets": supernets, "searches": rows}
            Path(args.out).write_text(json.dumps(result, indent=2) + "\n")  # as they finish
        if args.plots:
            compare_plot(args, task, args.schedulers)


if __name__ == "__main__":
    main()
