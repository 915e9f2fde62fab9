"""Baselines against the search: test error over parameter ratio, and hypervolume over wall-clock time.

For every model (``--scale``), task and seed this script runs, each step skipped when its result exists and resumed
when it was interrupted (work directory ``--workdir/<model>/<task>/seed<k>/<step>``, a log beside each step):

- ``finetuned``: the full model fine-tuned on the task (``train-supernet --strategy standard``), the input of the baselines;
- ``ws-nas``: a super-network (``train-supernet``, default strategy) and a weight-sharing search on it (``search``);
- ``standard-nas``: a standard-NAS search that fine-tunes every sub-network (``search --mode standard``);
- ``rfp``, ``layer-drop``, ``head-prune``: ``prune`` of the fine-tuned model over the ``--budgets`` sweep.

Results (``--out-dir``): ``relative_to_model_size.csv`` in the columns of the paper's
``data_relative_to_model_size*.csv`` (``runtime, threshold, test_error, valid_error, method, model, dataset, seed``:
for every threshold, the test error of the sub-network with the best validation error among those with a
parameter ratio <= threshold; method names as the paper's: nas, standard_nas, rfp, ld, hp), ``hypervolume.csv``
(method, model, dataset, seed, runtime, hv: the hypervolume of (validation error, params ratio), reference point 1,
over wall-clock seconds; WS-NAS includes the super-network's training and, when it was trained against a fixed
teacher (``--teacher auto`` or a directory, its ``supernet.json`` ``teacher.path``), that teacher's fine-tuning, the
baselines the fine-tuning of their input model and each budget's pruning time in sweep order; the times are the
checkpoints' ``train_time_s`` and the searches' ``wallclock_s``), ``relative_to_model_size.png`` (ours beside the
paper's BERT-base rows), ``hypervolume.png`` and ``results.md``.

``--from-quality DIR`` (``--scale cpu`` only) reuses what ``benchmarks/quality.py --workdir DIR`` trained with the
final recipe: for a (task, seed) with a finished run ``DIR/<task>-seed<k>/`` whose reference was fine-tuned from the
scale's model, ``finetuned`` is a symlink to the reference its teacher row used (``supernet-teacher``'s teacher),
``supernet`` to ``supernet-teacher`` and ``ws-nas`` to ``search-teacher`` (read in place, nothing in DIR is written;
see benchmarks/quality_runs.py for the checks). Those steps then count as done; their rows are method ``nas`` like a
fresh run's. WS-NAS's clock is then reference fine-tune (its ``train_time_s``, the chosen learning rate only, not
quality.py's learning-rate grid) + teacher super-network training (``train_time_s``) + search (``wallclock_s``;
quality.py's own ``stages_s``, which also count loading and evaluating, are not used), and the baselines start
after the same reference fine-tune. A (task, seed) without a usable run is logged and its steps run as before.
rfp, layer-drop, head-prune and standard-nas always run here.

    HF_HUB_OFFLINE=1 python benchmarks/baselines_vs_search.py --scale cpu --data-dir ../shared/data/glue \\
        --tasks rte mrpc cola stsb --seeds 0 1 2 --workdir runs/baselines --out-dir benchmarks/results/baselines
    # tiny end-to-end check (minutes):
    HF_HUB_OFFLINE=1 python benchmarks/baselines_vs_search.py --scale cpu --data-dir ../shared/data/glue --tasks rte \\
        --seeds 0 --epochs 1 --max-train-examples 64 --max-eval-examples 32 --max-length 64 --max-trials 4 \\
        --budgets 0.9,0.7 --examples 32 --workdir /tmp/bvs --out-dir /tmp/bvs/results
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality_runs import link_quality_run  # noqa: E402
from scales import SCALES, reachable_models, short_name  # noqa: E402

PAPER_NAMES = {"ws-nas": "nas", "standard-nas": "standard_nas", "rfp": "rfp", "layer-drop": "ld", "head-prune": "hp"}
BASELINES = ("rfp", "layer-drop", "head-prune")
ANCHORS = Path(__file__).resolve().parents[1].parent / "shared" / "anchors" / "plm_pruning_results"  # ../shared beside the checkout
COLUMNS = ["runtime", "threshold", "test_error", "valid_error", "method", "model", "dataset", "seed"]


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "syne_prune", *map(str, args)]


def data_args(args) -> list[str]:
    extra = ["--data-dir", args.data_dir, "--max-length", str(args.max_length)]
    for name in ("max_train_examples", "max_eval_examples"):
        if getattr(args, name) is not None:
            extra += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    return extra


def steps(args, model: str, task: str, seed: int, work: Path, step: str) -> list[list[str]]:
    """The commands ``step`` runs, in order (each resumable or skipped when done)."""
    common = ["--task", task, "--seed", str(seed), "--epochs", str(args.epochs), *data_args(args)]
    search = ["--max-wallclock", str(args.search_budget), "--n-workers", str(args.n_workers), "--seed", str(seed)]
    if args.max_trials:
        search += ["--max-trials", str(args.max_trials)]
    if args.max_eval_examples is not None:
        search += ["--max-eval-examples", str(args.max_eval_examples)]
    prune = ["--model", work / "finetuned", "--task", task, "--seed", str(seed), "--examples", str(args.examples), *data_args(args)]
    if step in BASELINES:
        return [cli("prune", "--method", step, *prune, "--max-params", reachable_budgets(args.budgets, step, work / "finetuned"), "--output", work / step)]
    return {
        "finetuned": [cli("train-supernet", "--model", model, "--strategy", "standard", "--importance", "none", *common, "--output", work / "finetuned")],
        "ws-nas": [cli("train-supernet", "--model", model, *common, "--output", work / "supernet"),
                   cli("search", "--supernet", work / "supernet", *search, "--output", work / "ws-nas")],
        "standard-nas": [cli("search", "--mode", "standard", "--model", model, *common, *search, "--output", work / "standard-nas")],
    }[step]


def reachable_budgets(budgets: str, method: str, model_dir: Path) -> str:
    """The budgets of the sweep ``method`` can reach (head-prune cannot go below the model without attention;
    MiniLM's embeddings are half its parameters); all of them while the fine-tuned model does not exist yet."""
    if not (model_dir / "config.json").is_file():
        return budgets
    from syne_prune.baselines import smallest_ratio

    floor = smallest_ratio(method, str(model_dir))
    kept = [b for b in budgets.split(",") if float(b) >= floor]
    if len(kept) < len(budgets.split(",")):
        print(f"  {method} reaches no less than {floor:.4f} of the parameters: budgets {','.join(kept) or 'none'} only", flush=True)
    return ",".join(kept) or f"{math.ceil(floor * 1e6) / 1e6:.6f}"


def done(path: Path) -> bool:
    """A finished step's marker: supernet.json (training), summary.json (search), results.csv with every budget (prune)."""
    if (path / "summary.json").is_file() or ((path / "supernet.json").is_file() and not (path / ".resume").exists()):
        return True
    return (path / "results.csv").is_file() and (path / "done").is_file()


def run_step(command: list[str], log: Path) -> bool:
    """Run one command (resuming an interrupted one); False on failure (reported with its log)."""
    output = Path(command[command.index("--output") + 1])
    if done(output):
        return True
    if output.exists():
        command = command + (["--resume"] if "prune" not in command else ["--overwrite"])
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as handle:
        code = subprocess.call(command, stdout=handle, stderr=subprocess.STDOUT, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    if code == 0 and "prune" in command:
        (output / "done").write_text("")
    if code != 0:
        print(f"  failed (exit {code}): {' '.join(command)}; see {log}", flush=True)
    return code == 0


def supernet_time(supernet: Path) -> float:
    """Seconds until a super-network exists: its training epochs (``train_time_s``) plus, when it was trained against a
    fixed teacher whose checkpoint is still there (``teacher.path``: ``--teacher auto`` or a directory), the
    teacher's fine-tuning (its ``train_time_s``)."""
    metadata = json.loads((supernet / "supernet.json").read_text())
    teacher = Path((metadata.get("teacher") or {}).get("path") or supernet / "no-teacher") / "supernet.json"
    return float(metadata["train_time_s"]) + (float(json.loads(teacher.read_text())["train_time_s"]) if teacher.is_file() else 0.0)


def candidates(work: Path, method: str) -> tuple[pd.DataFrame, float]:
    """(rows with valid_error, test_error, params, time_s = when each became available), and the method's runtime."""
    if method in BASELINES:
        frame = pd.read_csv(work / method / "results.csv")
        start = json.loads((work / "finetuned" / "supernet.json").read_text())["train_time_s"]
        frame["time_s"] = start + (frame["prune_time_s"] + frame["finetune_time_s"]).cumsum()
        return frame.rename(columns={"params_ratio": "params"})[["valid_error", "test_error", "params", "time_s"]], float(frame["time_s"].max())
    from syne_prune.search.results import read_trials

    trials = read_trials(work / method / "trials.csv")
    summary = json.loads((work / method / "summary.json").read_text())
    done_ = trials[(trials["status"] == "completed") & (trials["fidelity"] >= trials["fidelity"].max())]
    frame = done_.rename(columns={"error": "valid_error"})[["valid_error", "test_error", "params"]].copy()
    offset = supernet_time(work / "supernet") if method == "ws-nas" else 0.0
    frame["time_s"] = np.nan
    return frame, offset + float(summary.get("wallclock_s") or 0)


def best_below(frame: pd.DataFrame, thresholds: list[float]) -> list[tuple[float, float, float]]:
    """(threshold, test error, validation error) of the best-on-validation row with params <= threshold."""
    rows = []
    for threshold in thresholds:
        inside = frame[frame["params"] <= threshold + 1e-12].dropna(subset=["test_error"])
        if len(inside):
            best = inside.loc[inside["valid_error"].idxmin()]
            rows.append((threshold, float(best["test_error"]), float(best["valid_error"])))
    return rows


def hypervolume_curve(work: Path, method: str, frame: pd.DataFrame) -> list[tuple[float, float]]:
    from syne_prune.search.results import hypervolume
    from syne_prune.search.searchers import non_dominated

    if method not in BASELINES:
        curve = pd.read_csv(work / method / "hypervolume.csv")
        offset = supernet_time(work / "supernet") if method == "ws-nas" else 0.0
        return [(offset + t, h) for t, h in zip(curve["wallclock_s"], curve["hypervolume"])]
    points, curve = np.empty((0, 2)), []
    for row in frame.itertuples():
        points = np.vstack([points, [row.valid_error, row.params]])
        points = points[non_dominated(points)]
        curve.append((row.time_s, hypervolume(points)))
    return curve


def collect(args, models: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    thresholds = [float(t) for t in args.thresholds.split(",")]
    size_rows, hv_rows = [], []
    for model in models:
        for task in args.tasks:
            for seed in args.seeds:
                work = Path(args.workdir) / short_name(model) / task / f"seed{seed}"
                for method in args.methods:
                    try:
                        frame, runtime = candidates(work, method)
                    except (FileNotFoundError, KeyError):
                        continue  # not run (yet)
                    for threshold, test_error, valid_error in best_below(frame, thresholds):
                        size_rows.append([runtime, threshold, test_error, valid_error, PAPER_NAMES[method], short_name(model), task, seed])
                    for t, h in hypervolume_curve(work, method, frame):
                        hv_rows.append([PAPER_NAMES[method], short_name(model), task, seed, t, h])
    return pd.DataFrame(size_rows, columns=COLUMNS), pd.DataFrame(hv_rows, columns=["method", "model", "dataset", "seed", "runtime", "hv"])


def plot_sizes(ours: pd.DataFrame, path: Path, anchors: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paper = pd.read_csv(anchors / "data_relative_to_model_size.csv", index_col=0) if anchors.is_dir() else pd.DataFrame(columns=COLUMNS)
    paper = paper[paper["model"] == "bert-base-cased"]
    paper = paper[paper["runtime"] == paper.groupby(["method", "dataset"])["runtime"].transform("max")]
    datasets = sorted(ours["dataset"].unique())
    fig, axes = plt.subplots(len(datasets), 2, figsize=(10, 3.4 * len(datasets)), squeeze=False)
    for row, dataset in enumerate(datasets):
        for column, (frame, label) in enumerate(((ours, "ours: " + ", ".join(ours["model"].unique())), (paper, "paper: bert-base-cased"))):
            ax = axes[row][column]
            for method, group in frame[frame["dataset"] == dataset].groupby("method"):
                mean = group.groupby("threshold")["test_error"].agg(["mean", "std", "count"]).reset_index()
                ax.errorbar(mean["threshold"], mean["mean"], yerr=mean["std"].fillna(0), marker="o", ms=3, capsize=2, label=f"{method}")
            ax.set_title(f"{dataset} ({label})", fontsize=9)
            ax.set_xlabel("parameter ratio threshold")
            ax.set_ylabel("test error (best on validation)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_hypervolume(hv: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted(hv.groupby(["model", "dataset", "seed"]).groups)
    fig, axes = plt.subplots(len(keys), 1, figsize=(6, 3.2 * len(keys)), squeeze=False)
    for ax, (model, dataset, seed) in zip(axes[:, 0], keys):
        for method, group in hv[(hv["model"] == model) & (hv["dataset"] == dataset) & (hv["seed"] == seed)].groupby("method"):
            ax.step(group["runtime"], group["hv"], where="post", marker=".", label=method)
        ax.set_title(f"{model} / {dataset} / seed {seed}", fontsize=9)
        ax.set_xlabel("wall-clock (s)")
        ax.set_ylabel("hypervolume (valid error, params)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(sizes: pd.DataFrame, hv: pd.DataFrame, args) -> str:
    lines = [f"# Baselines against the search ({args.scale} scale)", "",
             "Test error (1 - metric) of the best-on-validation sub-network with parameter ratio <= threshold, mean ± std over seeds.", ""]
    for (model, dataset), group in sizes.groupby(["model", "dataset"]):
        table = group.groupby(["method", "threshold"])["test_error"].agg(["mean", "std", "count"]).reset_index()
        thresholds = sorted(table["threshold"].unique())
        lines += [f"## {model} / {dataset}", "", "| method | " + " | ".join(f"<= {t:g}" for t in thresholds) + " |",
                  "|---|" + "---|" * len(thresholds)]
        for method, rows in table.groupby("method"):
            cells = {r.threshold: f"{r.mean:.3f}" + (f" ± {r.std:.3f}" if r.count > 1 else "") for r in rows.itertuples()}
            lines.append(f"| {method} | " + " | ".join(cells.get(t, "–") for t in thresholds) + " |")
        lines.append("")
    if len(hv):
        final = hv.sort_values("runtime").groupby(["model", "dataset", "seed", "method"]).last().reset_index()
        lines += ["## Final hypervolume and wall-clock", "", "| model | dataset | seed | method | hypervolume | wall-clock (s) |", "|---|---|---|---|---|---|"]
        lines += [f"| {r.model} | {r.dataset} | {r.seed} | {r.method} | {r.hv:.4f} | {r.runtime:.0f} |" for r in final.itertuples()]
    return "\n".join(lines) + "\n"


def run_steps(args, models: list[str]) -> int:
    """Run (or resume, or skip when done) every model/task/seed's steps, linking quality runs first with
    ``--from-quality``; the number of failed steps."""
    failed = 0
    for model in models:
        for task in args.tasks:
            for seed in args.seeds:
                work = Path(args.workdir) / short_name(model) / task / f"seed{seed}"
                if args.from_quality:
                    print(f"{short_name(model)} / {task} / seed {seed}: --from-quality {args.from_quality}", flush=True)
                    link_quality_run(Path(args.from_quality), model, task, seed, work)
                needed = ["finetuned"] if any(m in BASELINES for m in args.methods) else []
                for step in needed + list(args.methods):
                    print(f"{short_name(model)} / {task} / seed {seed}: {step}", flush=True)
                    commands = steps(args, model, task, seed, work, step)  # after fine-tuning: the budgets a baseline reaches
                    if not all(run_step(command, work / f"{step}.log") for command in commands):
                        failed += 1
                        if step == "finetuned":
                            break
    return failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=list(SCALES), default="cpu", help="cpu: all-MiniLM-L6-v2; gpu: bert-base-cased, roberta-base")
    parser.add_argument("--data-dir", default="../shared/data/glue", help="real GLUE files")
    parser.add_argument("--tasks", nargs="+", default=["rte", "mrpc", "cola", "stsb"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(PAPER_NAMES), choices=list(PAPER_NAMES))
    parser.add_argument("--epochs", type=int, help="fine-tuning / super-network / standard-NAS epochs (default: the scale's)")
    parser.add_argument("--search-budget", type=float, help="wall-clock seconds per search (default: the scale's)")
    parser.add_argument("--max-trials", type=int, help="cap on trials per search (quick runs)")
    parser.add_argument("--n-workers", type=int, help="search workers (default: the scale's)")
    parser.add_argument("--budgets", default="0.9,0.8,0.7,0.6,0.5,0.4,0.3", help="parameter-ratio sweep of the baselines")
    parser.add_argument("--thresholds", default=",".join(f"{t:.2f}" for t in np.arange(0.3, 1.0001, 0.05)),
                        help="parameter-ratio thresholds of the table and plot")
    parser.add_argument("--examples", type=int, default=2048, help="prune --examples (Fisher, head importance, mask tuning)")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--max-train-examples", type=int)
    parser.add_argument("--max-eval-examples", type=int)
    parser.add_argument("--workdir", default="runs/baselines_vs_search")
    parser.add_argument("--out-dir", default="benchmarks/results/baselines_vs_search")
    parser.add_argument("--anchors", default=str(ANCHORS), help="the paper's result tables (plm_pruning_results)")
    parser.add_argument("--collect-only", action="store_true", help="only read what the work directory has (links nothing)")
    parser.add_argument("--from-quality", metavar="DIR",
                        help="a benchmarks/quality.py --workdir (--scale cpu only): a (task, seed) with a finished run there links its "
                             "teacher reference as finetuned and supernet-teacher + search-teacher as ws-nas instead of training them "
                             "(read in place, nothing there is written); without one those steps run as before")
    args = parser.parse_args()
    if args.from_quality and args.scale != "cpu":
        parser.error("--from-quality goes with --scale cpu (quality.py trains all-MiniLM-L6-v2); drop it or use --scale cpu")
    if args.from_quality and not Path(args.from_quality).is_dir():
        parser.error(f"--from-quality {args.from_quality} is not a directory; give a benchmarks/quality.py --workdir")
    scale = SCALES[args.scale]
    args.epochs = args.epochs or scale["epochs"]
    args.search_budget = args.search_budget or scale["search_budget_s"]
    args.n_workers = args.n_workers or scale["n_workers"]
    models = reachable_models(args.scale)
    failed = 0 if args.collect_only else run_steps(args, models)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sizes, hv = collect(args, models)
    sizes.to_csv(out / "relative_to_model_size.csv")
    hv.to_csv(out / "hypervolume.csv", index=False)
    if len(sizes):
        plot_sizes(sizes, out / "relative_to_model_size.png", Path(args.anchors))
    if len(hv):
        plot_hypervolume(hv, out / "hypervolume.png")
    (out / "results.md").write_text(markdown(sizes, hv, args))
    print(f"results in {out}: {len(sizes)} threshold rows, {len(hv)} hypervolume points; {failed} failed step(s)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
