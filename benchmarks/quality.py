"""How much of the unpruned model's test metric the chosen sub-networks keep, for the recipe rows of the ablation, on real all-MiniLM-L6-v2 and real GLUE files.

Per task and seed:

1. **reference**: the full model fine-tuned with the `standard` strategy, for every learning rate of
   ``--reference-lrs`` (warm-up ``--reference-warmup-ratio``); the one with the best validation metric is the unpruned reference (and the teacher of
   the teacher rows), so that a weak reference cannot inflate the shares.
2. per **row** (cumulative recipe): train a super-network, run a weight-sharing search (``--scheduler``,
   ``--max-trials``), and for each budget of ``--budgets`` (ratios of the *prunable* encoder parameters) take
   the completed trial with the lowest validation error under the budget, export it and score it on the test
   split (GLUE dev). Rows: ``full`` (today's recipe), ``importance`` (+ Fisher ordering),
   ``teacher`` (+ the fine-tuned reference as a fixed teacher), ``recovery`` (the ``teacher`` row's chosen
   sub-networks, each fine-tuned ``--recover-epochs`` with distillation from the reference).

   The levers, each one row beside the one it changes, so that its share is the difference (``--rows`` picks them;
   the default rows are the four above):

   - ``teacher-single`` / ``teacher-grid``: ``--teacher auto`` as the product runs it, fine-tuning its own teacher once
     at ``--lr`` without warm-up (``teacher_learning_rates=None``) / on the grid ``--teacher-learning-rates`` with
     ``--teacher-warmup-ratio`` warm-up, the best on validation kept; the teacher's validation and test scores and
     the grid are recorded (``teacher``), its cost is in ``supernet_s``;
   - ``layer``: the ``teacher`` row with layer-wise distillation (``--layer-distillation-weight``);
   - ``long``: the ``teacher`` row with the super-network trained ``--long-epochs`` instead of ``--epochs``;
   - ``recovery-auto``: the ``teacher`` row's choices recovered with ``epochs="auto"`` (``--recover-patience``,
     ``--recover-max-epochs``; epochs run and stop reason recorded per budget);
   - ``recovery-layer``: the ``teacher`` row's choices recovered ``--recover-epochs`` with layer-wise distillation.

"kept" is the share of the reference's gain over the best constant answer of the test split
(``evaluation.constant_answer``) that the sub-network keeps: (m - m_const) / (m_ref - m_const). For MRPC, whose F1
is 0.812 for "paraphrase" everywhere on the GLUE dev split, that is (F1 - 0.812) / (F1_ref - 0.812); for RTE the
majority class's accuracy (0.527) is subtracted; STS-B's Spearman is 0 for a constant, so its "kept" is the plain
ratio. Accuracy (and F1 for two classes) are reported too.

Resumable: every stage writes into ``--workdir`` and reuses what is there; each finished (task, seed, row)
is written to ``--output/TASK-seedS-ROW.json`` as it arrives, and the table/plot are rebuilt from those files.

    HF_HUB_OFFLINE=1 python benchmarks/quality.py --data-dir $GLUE_DIR --tasks mrpc stsb --seeds 0
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import transformers
from sklearn.metrics import accuracy_score, f1_score
from transformers import AutoConfig

from syne_prune.artifacts import ExportDir
from syne_prune.data import encode, eval_batches, get_task, load_task
from syne_prune.evaluation import constant_answer, predict
from syne_prune.files import holds_content
from syne_prune.models import auto_class_of, get_family, load_tokenizer
from syne_prune.objectives import subnet_size
from syne_prune.recovery import RecoverySettings
from syne_prune.search import SearchConfig, WeightSharingSettings, export_from_search, run_search
from syne_prune.search_spaces import get_search_space
from syne_prune.supernet import TrainingConfig, load_supernet, train_supernet

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
REFERENCE = "reference"  # a row's teacher: the best reference fine-tune
LONG = "long"  # a row's super-network epochs: --long-epochs instead of --epochs


@dataclass(frozen=True)
class Row:
    """One row: its super-network's ``TrainingConfig`` settings (``teacher=REFERENCE``: the best reference, from whose
    weights the super-network then starts, as ``--teacher auto`` does), the row whose super-network and search it reuses
    (None: its own), and the ``recover`` settings its chosen sub-networks are recovered with (None: not recovered)."""

    supernet: dict[str, Any]
    search_of: str | None = None
    recovery: dict[str, Any] | None = None


TEACHER = {"strategy": "full", "importance": "fisher", "teacher": REFERENCE}
ROWS = {
    "full": Row({"strategy": "full", "importance": "none", "teacher": None}),
    "importance": Row({"strategy": "full", "importance": "fisher", "teacher": None}),
    "teacher": Row(TEACHER),
    "recovery": Row(TEACHER, search_of="teacher", recovery={}),
    "teacher-single": Row({"strategy": "full", "importance": "fisher", "teacher": "auto", "teacher_learning_rates": None}),
    "teacher-grid": Row({"strategy": "full", "importance": "fisher", "teacher": "auto"}),
    "layer": Row({**TEACHER, "layer_distillation": "hidden"}),
    "long": Row({**TEACHER, "epochs": LONG}),
    "recovery-auto": Row(TEACHER, search_of="teacher", recovery={"epochs": "auto"}),
    "recovery-layer": Row(TEACHER, search_of="teacher", recovery={"layer_distillation": "hidden"}),
}
DEFAULT_ROWS = ["full", "importance", "teacher", "recovery"]


def test_scores(model_dir: Path, task_name: str, args, seed: int) -> dict[str, float]:
    """Test-split metrics of an exported (or fine-tuned) model: the task's metric, accuracy/F1 where they apply."""
    task = get_task(task_name)
    data = load_task(task_name, args.data_dir, args.validation_fraction, seed, max_eval_examples=args.max_eval_examples)
    config = AutoConfig.from_pretrained(model_dir)  # a pruned export's config class is registered by syne_prune
    model = auto_class_of(config).from_pretrained(model_dir, dtype=torch.float32)
    tokenizer = load_tokenizer(str(model_dir), required=False)
    batches = eval_batches(encode(data.test, tokenizer, args.max_length, task.is_regression), tokenizer)
    predictions, labels = predict(model.float(), batches, task.is_regression)
    scores = {task.metric_name: task.metric(labels, predictions if task.is_regression else predictions.astype(np.int64))}
    if not task.is_regression:
        scores["accuracy"] = float(accuracy_score(labels, predictions.astype(np.int64)))
        if task.num_labels == 2:
            scores["f1"] = float(f1_score(labels, predictions.astype(np.int64)))
    scores["constant"] = constant_answer(task, labels)[task.metric_name]  # the yardstick of kept()
    return scores


def train(args, task: str, seed: int, output: Path, model: str | None = None, **settings) -> dict[str, Any]:
    settings = {"warmup_ratio": args.warmup_ratio, "epochs": args.epochs} | settings
    config = TrainingConfig(
        model=model or args.model, task=task, output=str(output), data_dir=args.data_dir, search_space=args.search_space,
        batch_size=args.batch_size, max_length=args.max_length, seed=seed,
        validation_fraction=args.validation_fraction, max_train_examples=args.max_train_examples,
        max_eval_examples=args.max_eval_examples, **settings)
    started = time.perf_counter()
    done = (output / "supernet.json").is_file()
    metadata = train_supernet(config, resume=holds_content(output), progress=not args.quiet)
    metadata["stage_s"] = 0.0 if done else time.perf_counter() - started
    return metadata


def reference(args, task: str, seed: int, workdir: Path) -> dict[str, Any]:
    """The best-on-validation `standard` fine-tune over the learning-rate grid."""
    runs = []
    for lr in args.reference_lrs:
        metadata = train(args, task, seed, workdir / f"reference-lr{lr:g}", strategy="standard", lr=lr,
                         warmup_ratio=args.reference_warmup_ratio)
        runs.append({"lr": lr, "dir": workdir / f"reference-lr{lr:g}", "stage_s": metadata["stage_s"],
                     "validation": metadata["metrics"]["largest"]["validation"][metadata["metric"]]})
    best = max(runs, key=lambda run: run["validation"])
    return {"dir": best["dir"], "lr": best["lr"], "grid": [{k: v for k, v in r.items() if k != "dir"} for r in runs],
            "scores": test_scores(best["dir"], task, args, seed), "stage_s": sum(r["stage_s"] for r in runs)}


def prunable_ratios(supernet_dir: Path, trials: pd.DataFrame, search_space: str) -> np.ndarray:
    """Each trial's share of the prunable (encoder) parameters, from the one parameter counter."""
    model = load_supernet(str(supernet_dir)).model
    space = get_search_space(search_space, get_family(model.config).shape(model.config))
    full = subnet_size(model).encoder_params
    names = list(space.config_space)
    return np.array([subnet_size(model, space.to_mask(space.validate({n: row[n] for n in names}))).encoder_params / full
                     for _, row in trials.iterrows()])


def kept(task: str, scores: dict[str, float], ref: dict[str, float]) -> float:
    """The share of the reference's gain over the best constant answer (``ref["constant"]``) that ``scores`` keep, on
    the task's metric; NaN for a reference no better than that answer."""
    metric = get_task(task).metric_name
    gain = ref[metric] - ref["constant"]
    return (scores[metric] - ref["constant"]) / gain if gain > 0 else float("nan")


def supernet_settings(args, row: Row, ref: dict[str, Any]) -> dict[str, Any]:
    """The row's TrainingConfig settings with the reference's directory and the levers' options filled in."""
    settings = dict(row.supernet)
    if settings["teacher"] == REFERENCE:
        settings["teacher"] = str(ref["dir"])
    if settings["teacher"] == "auto" and "teacher_learning_rates" not in settings:
        settings |= {"teacher_learning_rates": tuple(args.teacher_learning_rates), "teacher_warmup_ratio": args.teacher_warmup_ratio}
    if settings.get("epochs") == LONG:
        settings["epochs"] = args.long_epochs
    if settings.get("layer_distillation", "none") != "none":
        settings["layer_distillation_weight"] = args.layer_distillation_weight
    return settings


def recover_chosen(args, task: str, seed: int, row: str, model_dir: Path, ref: dict[str, Any], workdir: Path, budget: float) -> tuple[Path, dict]:
    """Recover an exported choice of the row (``ROWS[row].recovery`` over the defaults of the options); returns the
    recovered export and what its recovery recorded (epochs run, stop reason, kept epoch, seconds)."""
    from syne_prune.recovery import recover

    recovered = workdir / (f"recovered-{budget:g}" if row == "recovery" else f"recovered-{row}-{budget:g}")
    settings = {"epochs": args.recover_epochs, "patience": args.recover_patience, "max_epochs": args.recover_max_epochs,
                "layer_distillation_weight": args.layer_distillation_weight, **ROWS[row].recovery}
    if not (recovered / "syne_prune.json").is_file():
        recover(str(model_dir), str(ref["dir"]), output=str(recovered), data_dir=args.data_dir, lr=args.recover_lr, seed=seed,
                max_train_examples=args.max_train_examples, max_eval_examples=args.max_eval_examples, overwrite=True,
                progress=not args.quiet, **settings)
    record = ExportDir(recovered).read()["recovery"]
    return recovered, {name: record.get(name) for name in ("epochs_run", "stop_reason", "kept_epoch", "train_time_s")}


def run_row(args, task: str, seed: int, row: str, ref: dict[str, Any], workdir: Path) -> dict[str, Any]:
    settings = supernet_settings(args, ROWS[row], ref)
    # with the reference as teacher the super-network also starts from its weights, as `--teacher auto` does
    start = settings["teacher"] if settings["teacher"] not in (None, "auto") else args.model
    supernet_row = ROWS[row].search_of or row
    supernet_dir, search_dir = workdir / f"supernet-{supernet_row}", workdir / f"search-{supernet_row}"
    stages: dict[str, float] = {}
    trained = train(args, task, seed, supernet_dir, model=start, lr=args.lr, **settings)
    stages["supernet_s"] = trained["stage_s"]
    started = time.perf_counter()
    search = SearchConfig(trial_settings=WeightSharingSettings(str(supernet_dir)), output=str(search_dir), scheduler=args.scheduler, n_workers=args.n_workers,
                          max_trials=args.max_trials, seed=seed, data_dir=args.data_dir,
                          max_eval_examples=args.max_eval_examples)
    summary = run_search(search, resume=search_dir.exists(), progress=not args.quiet)
    stages["search_s"] = time.perf_counter() - started
    trials = pd.read_csv(search_dir / "trials.csv")
    trials = trials[trials["status"] == "completed"].reset_index(drop=True)
    trials["prunable"] = prunable_ratios(supernet_dir, trials, args.search_space)
    result = {"task": task, "seed": seed, "row": row, "reference": {k: v for k, v in ref.items() if k != "dir"} | {"dir": str(ref["dir"])},
              "teacher": trained.get("teacher"), "supernet_epochs": settings.get("epochs", args.epochs),
              "hypervolume": summary["hypervolume"], "trials": len(trials), "budgets": [], "stages_s": stages}
    for budget in args.budgets:
        eligible = trials[trials["prunable"] <= budget + 1e-9]
        if eligible.empty:
            result["budgets"].append({"budget": budget, "trial_id": None})
            continue
        chosen = eligible.sort_values(["error", "prunable"]).iloc[0]
        model_dir = workdir / f"export-{supernet_row}-{budget:g}"
        if not (model_dir / "syne_prune.json").is_file():
            export_from_search(search_dir, model_dir, trial_id=int(chosen["trial_id"]), overwrite=True)
        recovery = None
        if ROWS[row].recovery is not None:
            started = time.perf_counter()
            model_dir, recovery = recover_chosen(args, task, seed, row, model_dir, ref, workdir, budget)
            stages[f"recover_{budget:g}_s"] = time.perf_counter() - started
        scores = test_scores(model_dir, task, args, seed)
        result["budgets"].append({"budget": budget, "trial_id": int(chosen["trial_id"]), "prunable": float(chosen["prunable"]),
                                  "params": float(chosen["params"]), "validation_error": float(chosen["error"]),
                                  "test": scores, "kept": kept(task, scores, ref["scores"]), "recovery": recovery})
    return result


def report(output: Path) -> pd.DataFrame:
    """quality.csv, quality.md and quality.png from the per-(task, seed, row) JSON files."""
    rows = []
    for path in sorted(output.glob("*-seed*-*.json")):
        result = json.loads(path.read_text())
        for b in result["budgets"]:
            rows.append({"task": result["task"], "seed": result["seed"], "row": result["row"], "budget": b["budget"],
                         "kept": b.get("kept"), "prunable": b.get("prunable"), "hypervolume": result["hypervolume"],
                         **{f"test_{k}": v for k, v in (b.get("test") or {}).items()},
                         **{f"reference_{k}": v for k, v in result["reference"]["scores"].items()}})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table.to_csv(output / "quality.csv", index=False)
    summary = table.groupby(["task", "row", "budget"])["kept"].agg(["mean", "std", "count"]).reset_index()
    lines = ["| task | row | kept at ≤75% | ≤50% | ≤33% | hypervolume |", "|---|---|---|---|---|---|"]
    for (task, row), group in summary.groupby(["task", "row"], sort=False):
        cells = [f"{r['mean']:.3f}" + (f" ± {r['std']:.3f} ({int(r['count'])} seeds)" if r["count"] > 1 else "")
                 for _, r in group.sort_values("budget", ascending=False).iterrows()]
        hv = table[(table["task"] == task) & (table["row"] == row)]["hypervolume"].mean()
        lines.append(f"| {task} | {row} | " + " | ".join(cells) + f" | {hv:.4f} |")
    (output / "quality.md").write_text("\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(summary["task"].unique())
    figure, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 4), squeeze=False)
    for axis, task in zip(axes[0], tasks):
        for row, group in summary[summary["task"] == task].groupby("row", sort=False):
            axis.plot(group["budget"], group["mean"], marker="o", label=row, color=f"C{list(ROWS).index(row) % 10}")  # one colour per row in every panel
        axis.axhline(1.0, color="grey", lw=0.8)
        axis.set(title=task, xlabel="budget (share of prunable parameters)", ylabel="kept (share of the unpruned reference)")
        axis.legend()
    figure.tight_layout()
    figure.savefig(output / "quality.png", dpi=120)
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="GLUE TSV files (TASK/train.tsv, TASK/dev.tsv); default: the Hugging Face hub")
    parser.add_argument("--model", default=MODEL, help="the model every row starts from")
    parser.add_argument("--tasks", nargs="+", default=["mrpc", "stsb"])
    parser.add_argument("--rows", nargs="+", default=DEFAULT_ROWS, choices=list(ROWS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--search-space", default="small")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--long-epochs", type=int, default=6, help="long: the super-network's epochs")
    parser.add_argument("--lr", type=float, default=8e-5, help="super-network learning rate")
    parser.add_argument("--warmup-ratio", type=float, default=0.0, help="share of the steps the learning rate warms up over "
                        "(references and super-networks alike)")
    parser.add_argument("--reference-lrs", nargs="+", type=float, default=[3e-5, 8e-5, 1.5e-4])
    parser.add_argument("--reference-warmup-ratio", type=float, default=0.0,
                        help="the reference fine-tunes' warm-up (0.1: as --teacher auto fine-tunes its teacher)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--validation-fraction", type=float, default=0.3)
    parser.add_argument("--max-train-examples", type=int, default=None, help="default: the full training split")
    parser.add_argument("--max-eval-examples", type=int, default=None, help="smoke tests only; default: full splits")
    parser.add_argument("--scheduler", default="ehvi")
    parser.add_argument("--max-trials", type=int, default=100)
    parser.add_argument("--n-workers", type=int, default=2)
    parser.add_argument("--budgets", nargs="+", type=float, default=[0.75, 0.5, 0.33])
    parser.add_argument("--recover-epochs", type=int, default=2)
    parser.add_argument("--recover-lr", type=float, default=5e-5)
    parser.add_argument("--recover-patience", type=int, default=RecoverySettings.patience, help="recovery-auto: patience")
    parser.add_argument("--recover-max-epochs", type=int, default=RecoverySettings.max_epochs, help="recovery-auto: the most epochs")
    parser.add_argument("--teacher-learning-rates", nargs="+", type=float, default=list(TrainingConfig.teacher_learning_rates),
                        help="teacher-grid: the teacher's learning-rate grid")
    parser.add_argument("--teacher-warmup-ratio", type=float, default=TrainingConfig.teacher_warmup_ratio, help="teacher-grid: its warm-up")
    parser.add_argument("--layer-distillation-weight", type=float, default=TrainingConfig.layer_distillation_weight,
                        help="layer, recovery-layer: the layer-wise term's weight")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--workdir", type=Path, default=Path("runs/quality"))
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/quality"))
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quiet:
        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    args.output.mkdir(parents=True, exist_ok=True)
    for task in args.tasks:
        for seed in args.seeds:
            workdir = args.workdir / f"{task}-seed{seed}"
            workdir.mkdir(parents=True, exist_ok=True)
            ref = reference(args, task, seed, workdir)
            for row in args.rows:
                path = args.output / f"{task}-seed{seed}-{row}.json"
                if path.is_file():
                    continue
                path.write_text(json.dumps(run_row(args, task, seed, row, ref, workdir), indent=2, default=float) + "\n")
                report(args.output)
                print(f"{task} seed {seed} {row}: written {path}", flush=True)
    print((args.output / "quality.md").read_text() if (args.output / "quality.md").is_file() else "no results")


if __name__ == "__main__":
    main()
