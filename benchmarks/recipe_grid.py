"""The super-network's own settings, chosen on validation: learning rate, epochs and warm-up of the final recipe.

The final recipe (``benchmarks/quality.py``, row ``teacher``) trains the super-network from the fine-tuned reference,
distilling from it, at lr 8e-5 for 3 epochs without warm-up; those three were set, not measured. This script keeps
everything else of that row fixed, the reference included (read from a finished quality run, ``--quality``), and
trains one super-network per grid point that changes one setting, then runs the same search on it (EHVI, 50
trials, 2 workers, the seed's). Every point is judged on the **validation** split only, as a user choosing a default
would: the search's hypervolume of (validation error, prunable share) and the best validation error among the
trials with at most 75% / 50% / 33% of the prunable encoder parameters. The ``base`` point is the quality run's own
teacher row (read, not retrained).

Resumable: each point's super-network and search live in ``--workdir/<task>-seed<k>/<point>/`` and a finished one is
read back; ``--output/recipe_grid.csv`` and ``recipe_grid.md`` are rebuilt after every point.

    HF_HUB_OFFLINE=1 python benchmarks/recipe_grid.py --data-dir $GLUE_DIR --quality runs/quality \\
        --tasks mrpc --seeds 0 --points warmup0.1 lr1.5e-4 --workdir runs/recipe_grid --output benchmarks/results/recipe_grid
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import prunable_ratios  # noqa: E402
from quality_runs import find_quality_run  # noqa: E402

from syne_prune.artifacts import SearchDir, SupernetDir
from syne_prune.search import SearchConfig, WeightSharingSettings, run_search  # noqa: E402
from syne_prune.supernet import TrainingConfig, train_supernet  # noqa: E402

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
BASE = {"lr": 8e-5, "epochs": 3, "warmup_ratio": 0.0}  # the teacher row's super-network settings (quality.py's defaults)
POINTS = {  # one setting changed from BASE per point
    "base": {},
    "lr4e-5": {"lr": 4e-5},
    "lr1.5e-4": {"lr": 1.5e-4},
    "epochs5": {"epochs": 5},
    "warmup0.1": {"warmup_ratio": 0.1},
}
BUDGETS = (0.75, 0.5, 0.33)


def settings_of(point: str) -> dict:
    return {**BASE, **POINTS[point]}


def train_and_search(args, task: str, seed: int, point: str, reference: Path, directory: Path) -> tuple[Path, Path, float]:
    """The point's super-network (from and distilling from ``reference``, the teacher row's other settings) and its
    search, each skipped when finished; returns their directories and the seconds spent here."""
    started = time.perf_counter()
    supernet, search = directory / "supernet", directory / "search"
    config = TrainingConfig(model=str(reference), teacher=str(reference), task=task, output=str(supernet), data_dir=args.data_dir,
                            search_space="small", strategy="full", importance="fisher", batch_size=32, max_length=128, seed=seed,
                            validation_fraction=0.3, **settings_of(point))
    if not (supernet / "supernet.json").is_file() or (supernet / ".resume").exists():
        train_supernet(config, resume=supernet.exists(), progress=not args.quiet)
    if not (search / "summary.json").is_file():
        run_search(SearchConfig(trial_settings=WeightSharingSettings(str(supernet)), output=str(search), scheduler="ehvi", n_workers=2,
                                max_trials=args.max_trials,
                                seed=seed, data_dir=args.data_dir), resume=search.exists(), progress=not args.quiet)
    return supernet, search, time.perf_counter() - started


def point_row(task: str, seed: int, point: str, supernet: Path, search: Path) -> dict:
    """One row of the table: the super-network's settings as its checkpoint records them, the search's validation
    hypervolume, the best validation error under each budget (share of the prunable encoder parameters; NaN when no
    trial is that small) and the super-network's training time (seconds)."""
    trials = pd.read_csv(search / "trials.csv")
    trials = trials[trials["status"] == "completed"].reset_index(drop=True)
    trials["prunable"] = prunable_ratios(supernet, trials, "small")
    metadata = SupernetDir(supernet).read()
    used = metadata["hyperparameters"]
    row = {"task": task, "seed": seed, "point": point, "lr": used["lr"], "epochs": used["epochs"], "warmup_ratio": used.get("warmup_ratio", 0.0),
           "hypervolume": SearchDir(search).read_summary()["hypervolume"], "train_time_s": metadata["train_time_s"]}
    for budget in BUDGETS:
        inside = trials[trials["prunable"] <= budget + 1e-9]
        row[f"valid_error_{budget:g}"] = float(inside["error"].min()) if len(inside) else float("nan")
    return row


def markdown(table: pd.DataFrame) -> str:
    budgets = " | ".join(f"≤ {b:.0%}" for b in BUDGETS)
    lines = [f"| task | seed | point | lr | epochs | warm-up | validation hypervolume | best validation error {budgets} | "
             "super-network training (s) |", "|---|---|---|---|---|---|---|" + "---|" * len(BUDGETS) + "---|"]
    for r in table.to_dict("records"):
        errors = " | ".join(f"{r[f'valid_error_{b:g}']:.4f}" for b in BUDGETS)
        lines.append(f"| {r['task']} | {r['seed']} | {r['point']} | {r['lr']:g} | {r['epochs']} | {r['warmup_ratio']:g} | "
                     f"{r['hypervolume']:.4f} | {errors} | {r['train_time_s']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="GLUE TSV files (TASK/train.tsv, TASK/dev.tsv); default: the Hugging Face hub")
    parser.add_argument("--quality", type=Path, required=True, help="a benchmarks/quality.py --workdir with finished teacher rows")
    parser.add_argument("--tasks", nargs="+", default=["mrpc", "stsb"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--points", nargs="+", default=list(POINTS), choices=list(POINTS))
    parser.add_argument("--max-trials", type=int, default=50, help="trials per search (the quality runs' 50)")
    parser.add_argument("--workdir", type=Path, default=Path("runs/recipe_grid"))
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/recipe_grid"))
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    args.output.mkdir(parents=True, exist_ok=True)
    rows = []
    for task in args.tasks:
        for seed in args.seeds:
            run = find_quality_run(args.quality, MODEL, task, seed)  # raises NotUsable with the reason
            for point in args.points:
                if point == "base":  # the quality run's own teacher row
                    supernet, search = run.supernet, run.search
                else:
                    supernet, search, seconds = train_and_search(args, task, seed, point, run.reference, args.workdir / f"{task}-seed{seed}" / point)
                    print(f"{task} seed {seed} {point}: {seconds:.0f} s", flush=True)
                rows.append(point_row(task, seed, point, supernet, search))
                table = pd.DataFrame(rows)
                table.to_csv(args.output / "recipe_grid.csv", index=False)
                (args.output / "recipe_grid.md").write_text(markdown(table))
    print((args.output / "recipe_grid.md").read_text())


if __name__ == "__main__":
    main()
