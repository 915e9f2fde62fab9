"""Standard NAS on real all-MiniLM-L6-v2 weights: MO-ASHA against random search, same wall-clock budget.

Both searches run at the same time, side by side (one worker each, one thread each), so machine load
hits both alike. Each trial fine-tunes its own sub-network (``--trial-kind standard``) for up to
``--epochs`` epochs; MO-ASHA (epochs as the resource) stops weak ones early. Reported per scheduler:
trials started, epochs trained, epochs MO-ASHA saved (sum over stopped trials of the epochs they did
not run), full-fidelity trials, final hypervolume, and the hypervolume over wall-clock time (plot).

    HF_HUB_OFFLINE=1 python benchmarks/standard_nas.py --data-dir $GLUE_DIR --task mrpc \\
        --budget 1200 --epochs 3 --max-train-examples 640 --max-eval-examples 200 \\
        --out benchmarks/results/standard_nas.json --plot benchmarks/results/plots/standard_nas_hypervolume.png
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from syne_prune.artifacts import SearchDir

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def command(args, scheduler: str) -> list[str]:
    return [sys.executable, "-m", "syne_prune", "search", "--trial-kind", "standard", "--model", MODEL, "--task", args.task,
            *(["--data-dir", args.data_dir] if args.data_dir else []), "--search-space", args.search_space, "--scheduler", scheduler,
            "--epochs", str(args.epochs), "--lr", str(args.lr), "--batch-size", "32", "--max-train-examples", str(args.max_train_examples),
            "--max-eval-examples", str(args.max_eval_examples), "--n-workers", "1", "--max-wallclock", str(args.budget),
            "--seed", str(args.seed), "--output", str(Path(args.workdir) / scheduler), "--overwrite"]


def summarise(args, scheduler: str) -> dict:
    out = Path(args.workdir) / scheduler
    trials = pd.read_csv(out / "trials.csv")
    summary = SearchDir(out).read_summary()
    curve = pd.read_csv(out / "hypervolume.csv")
    finished = trials[trials["status"].isin(["completed", "stopped"])]
    saved = int((args.epochs - finished.loc[finished["status"] == "stopped", "epoch"]).sum())
    return {
        "scheduler": scheduler, "trials_finished": len(finished), "failed": int((trials["status"] == "failed").sum()),
        "stopped_early": int((finished["status"] == "stopped").sum()),
        "full_fidelity": int((finished["epoch"] == args.epochs).sum()),
        "epochs_trained": int(finished["epoch"].sum()), "epochs_saved": saved,
        "hypervolume": summary["hypervolume"], "wallclock_s": summary["wallclock_s"],
        "best_error_full_fidelity": float(finished.loc[finished["epoch"] == args.epochs, "error"].min()) if len(finished) else None,
        "hypervolume_over_time": curve.to_dict("list"),
        "last_epochs": finished["epoch"].value_counts().sort_index().to_dict(),
    }


def plot(rows: list[dict], budget: float, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for row in rows:
        curve = row["hypervolume_over_time"]
        ax.step([0, *curve["wallclock_s"], budget], [0, *curve["hypervolume"], curve["hypervolume"][-1] if curve["hypervolume"] else 0],
                where="post", label=f"{row['scheduler']} ({row['trials_finished']} trials, {row['epochs_trained']} epochs)")
    ax.set_xlabel("wall-clock (s)")
    ax.set_ylabel("hypervolume (error, params)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="GLUE TSV files (TASK/train.tsv, TASK/dev.tsv); default: the Hugging Face hub")
    parser.add_argument("--task", default="mrpc")
    parser.add_argument("--search-space", default="small")
    parser.add_argument("--schedulers", nargs="+", default=["moasha", "random"])
    parser.add_argument("--budget", type=float, default=1200, help="wall-clock seconds per search")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--max-train-examples", type=int, default=640)
    parser.add_argument("--max-eval-examples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default="/tmp/standard_nas")
    parser.add_argument("--out", required=True)
    parser.add_argument("--plot")
    args = parser.parse_args()
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")  # the searches run side by side: one thread per trial each
    processes = {s: subprocess.Popen(command(args, s), env=env, stdout=subprocess.DEVNULL, stderr=open(Path(args.workdir + f"-{s}.log"), "w"))
                 for s in args.schedulers}
    for scheduler, process in processes.items():
        if process.wait() != 0:
            sys.exit(f"{scheduler} search failed; see {args.workdir}-{scheduler}.log")
    rows = [summarise(args, s) for s in args.schedulers]
    for row in rows:
        print(json.dumps({k: v for k, v in row.items() if k != "hypervolume_over_time"}))
    recorded = dict(vars(args), data_dir="$GLUE_DIR" if args.data_dir else None)  # a record names no machine's path
    Path(args.out).write_text(json.dumps({"args": recorded, "searches": rows}, indent=2) + "\n")
    if args.plot:
        plot(rows, args.budget, Path(args.plot), f"standard NAS, MiniLM-L6 / {args.task}, {args.budget:.0f} s each, side by side")


if __name__ == "__main__":
    main()
