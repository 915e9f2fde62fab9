"""Baselines against the search: test error over the share of the prunable parameters, and hypervolume over wall-clock.

For every model (``--scale``), task and seed this script runs, each step skipped when its result exists and resumed
when it was interrupted (work directory ``--workdir/<model>/<task>/seed<k>/<step>``, a log beside each step and
each step's wall-clock seconds in ``steps.csv``):

- ``finetuned``: the full model fine-tuned on the task (``train-supernet --strategy standard``), the input of the baselines;
- ``ws-nas``: a super-network (``train-supernet``, default recipe, distilling from ``finetuned`` when it exists) and a
  weight-sharing search on it (``search``, ``--scheduler``);
- ``ws-nas-<scheduler>`` (``random``, ``morea``, ``ehvi``, ``moasha``, ``nsga2``, ``local_search``): a weight-sharing search
  with that scheduler on ws-nas's super-network (trained first if it is not there), the paper's WS-NAS per scheduler;
- ``standard-nas``: a standard-NAS search that fine-tunes every sub-network (``search --trial-kind standard``) at the
  fine-tuned model's learning rate and batch size (``finetuned`` runs first);
- ``rfp``, ``layer-drop``, ``head-prune``: ``prune`` of the fine-tuned model over the ``--budgets`` sweep (shares of the
  prunable encoder parameters, ``--max-encoder-params``; a fine-tuning baseline trains at the fine-tuned model's own
  learning rate and batch size).

Sizes are shares of the prunable (encoder) parameters, the search's ``params`` ratio converted with the model's own
counts: MiniLM's embeddings are half its parameters, so a ratio of all parameters would squeeze every method into
0.53-1. Results (``--out-dir``): ``relative_to_model_size.csv`` in the columns of the paper's
``data_relative_to_model_size*.csv`` (``runtime, threshold, test_error, valid_error, method, model, dataset, seed``:
for every threshold, the test error of the sub-network with the best validation error among those with a prunable
share <= threshold; method names as the paper's: nas, standard_nas, rfp, ld, hp), ``unpruned_model.csv`` (the
references, as the paper's ``data_unpruned_model.csv``, with ``constant_error``: the best constant answer's, for
classification tasks), ``relative_to_model_size_ws_nas.csv`` (the same for every weight-sharing search, ws-nas's
included, named by its scheduler as the paper's ``data_relative_to_model_size_ws_nas.csv``), ``hypervolume.csv``
(method, model, dataset, seed, runtime, hv: the hypervolume of (validation error, prunable share), reference point 1,
over wall-clock seconds; a ``ws-nas-<scheduler>`` under its scheduler's name; WS-NAS includes the super-network's
training and, when it was trained against a fixed teacher (its ``supernet.json`` ``teacher.path``), that teacher's
fine-tuning, the baselines the fine-tuning of their input model and each budget's pruning time in sweep order; the
times are the checkpoints' ``train_time_s`` and the searches' trial finish times), ``hypervolume_final.csv`` (the last
hypervolume, that of the swept range: shares below 0.33 counted as 0.33, and ``hv_gain``, that over the best constant
answer: validation errors as shares of its error, ``baselines_collect.gain_hypervolume``), ``relative_to_model_size.png`` (ours
beside the paper's BERT-base rows, their thresholds converted by ``paper_anchors.py``; ``..._ws_nas.png`` per
scheduler), ``hypervolume.png`` and ``results.md`` (``baselines_report.py``).

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

``--merge`` keeps what ``--out-dir`` already holds for every (method, task, seed) this run does not collect, so results
accumulate over runs and machines whose work directories are gone (a run collected now replaces its own earlier
rows; a reference that changed is reported, see ``baselines_collect.merge_earlier``).

    HF_HUB_OFFLINE=1 python benchmarks/baselines_vs_search.py --scale cpu --data-dir $GLUE_DIR \\
        --tasks rte mrpc cola stsb --seeds 0 1 2 --workdir runs/baselines --out-dir benchmarks/results/baselines
    # tiny end-to-end check (minutes):
    HF_HUB_OFFLINE=1 python benchmarks/baselines_vs_search.py --scale cpu --data-dir $GLUE_DIR --tasks rte \\
        --seeds 0 --epochs 1 --max-train-examples 64 --max-eval-examples 32 --max-length 64 --max-trials 4 \\
        --budgets 0.9,0.7 --examples 32 --workdir /tmp/bvs --out-dir /tmp/bvs/results
"""
from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
from pathlib import Path

from syne_prune.artifacts import SupernetDir

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baselines_collect import BASELINES, METHODS, PAPER_NAMES, WS_NAS_SCHEDULERS, collect, merge_earlier, searched_by, write_results  # noqa: E402
from baselines_report import TABLE_THRESHOLDS, markdown, plot_hypervolume, plot_sizes  # noqa: E402
from paper_anchors import ANCHORS, SCHEDULERS_TABLE, SIZES_TABLE, paper_kept  # noqa: E402
from quality_runs import link_quality_run  # noqa: E402
from scales import SCALES, reachable_models, short_name  # noqa: E402


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "syne_prune", *map(str, args)]


def data_args(args) -> list[str]:
    extra = [*(["--data-dir", args.data_dir] if args.data_dir else []), "--max-length", str(args.max_length)]
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
    prune = ["--model", work / "finetuned", "--task", task, "--seed", str(seed), "--examples", str(args.examples), *data_args(args),
             *finetuning_args(work / "finetuned")]
    # the super-network distils from the baselines' fine-tuned model when there is one (its time counts for WS-NAS),
    # as --from-quality's do; else train-supernet's default, --teacher auto
    teacher = ["--teacher", work / "finetuned"] if (work / "finetuned" / "supernet.json").is_file() else []
    scheduler = ["--scheduler", args.scheduler] if args.scheduler else []
    if step in BASELINES:
        return [cli("prune", "--method", step, *prune, "--max-encoder-params", reachable_budgets(args.budgets, step, work / "finetuned"),
                    "--output", work / step)]
    supernet = cli("train-supernet", "--model", model, *common, *teacher, "--output", work / "supernet")  # skipped when trained
    if step in WS_NAS_SCHEDULERS:
        return [supernet, cli("search", "--supernet", work / "supernet", *search, "--scheduler", WS_NAS_SCHEDULERS[step], "--output", work / step)]
    return {
        "finetuned": [cli("train-supernet", "--model", model, "--strategy", "standard", "--importance", "none", *common, "--output", work / "finetuned")],
        "ws-nas": [supernet, cli("search", "--supernet", work / "supernet", *search, *scheduler, "--output", work / "ws-nas")],
        "standard-nas": [cli("search", "--trial-kind", "standard", "--model", model, *common, *finetuning_args(work / "finetuned"), *search,
                             "--output", work / "standard-nas")],
    }[step]


# the methods that need the fine-tuned model first: the baselines prune it, standard NAS trains at its settings
TRAINS_AS_FINETUNED = (*BASELINES, "standard-nas")


def finetuning_args(model_dir: Path) -> list[str]:
    """``--lr`` and ``--batch-size`` of the fine-tuned model's own training (its ``supernet.json``), so that a baseline
    that fine-tunes after pruning (layer dropping) and standard NAS's trials train as the reference did (its learning
    rate chosen on validation, by ``benchmarks/quality.py`` with ``--from-quality``); none while it does not exist yet."""
    record = model_dir / "supernet.json"
    if not record.is_file():
        return []
    hyper = SupernetDir(model_dir).read().get("hyperparameters") or {}
    return [arg for name in ("lr", "batch_size") if name in hyper for arg in (f"--{name.replace('_', '-')}", str(hyper[name]))]


def reachable_budgets(budgets: str, method: str, model_dir: Path) -> str:
    """The budgets (ratios of the prunable encoder parameters) of the sweep ``method`` can reach (head-prune cannot go
    below the encoder without attention); all of them while the fine-tuned model does not exist yet."""
    if not (model_dir / "config.json").is_file():
        return budgets
    from syne_prune.baselines import smallest_ratio

    floor = smallest_ratio(method, str(model_dir), "encoder_params")
    kept = [b for b in budgets.split(",") if float(b) >= floor]
    if len(kept) < len(budgets.split(",")):
        print(f"  {method} reaches no less than {floor:.4f} of the prunable parameters: budgets {','.join(kept) or 'none'} only", flush=True)
    return ",".join(kept) or f"{math.ceil(floor * 1e6) / 1e6:.6f}"


def done(path: Path) -> bool:
    """A finished step's marker: supernet.json (training), summary.json (search), results.csv with every budget (prune)."""
    if (path / "summary.json").is_file() or ((path / "supernet.json").is_file() and not (path / ".resume").exists()):
        return True
    return (path / "results.csv").is_file() and (path / "done").is_file()


def run_step(command: list[str], log: Path) -> bool:
    """Run one command (resuming an interrupted one); False on failure (reported with its log). Its wall-clock
    seconds (loading, pruning, evaluation, export: all of it) are appended to ``steps.csv`` beside the log."""
    output = Path(command[command.index("--output") + 1])
    if done(output):
        return True
    if output.exists():
        command = command + (["--resume"] if "prune" not in command else ["--overwrite"])
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(log, "a") as handle:
        code = subprocess.call(command, stdout=handle, stderr=subprocess.STDOUT, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    with open(log.parent / "steps.csv", "a") as handle:
        handle.write(f"{output.name},{command[command.index('syne_prune') + 1]},{time.perf_counter() - started:.1f},{code}\n")
    if code == 0 and "prune" in command:
        (output / "done").write_text("")
    if code != 0:
        print(f"  failed (exit {code}): {' '.join(command)}; see {log}", flush=True)
    return code == 0


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
                needed = ["finetuned"] if any(m in TRAINS_AS_FINETUNED for m in args.methods) else []
                for step in needed + list(args.methods):
                    print(f"{short_name(model)} / {task} / seed {seed}: {step}", flush=True)
                    if step in WS_NAS_SCHEDULERS and searched_by(work / "ws-nas") == WS_NAS_SCHEDULERS[step]:
                        print(f"  ws-nas searched with {WS_NAS_SCHEDULERS[step]} already: skipped, ws-nas is that search", flush=True)
                        continue
                    commands = steps(args, model, task, seed, work, step)  # after fine-tuning: the budgets a baseline reaches
                    if not all(run_step(command, work / f"{step}.log") for command in commands):
                        failed += 1
                        if step == "finetuned":
                            break
    return failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=list(SCALES), default="cpu", help="cpu: all-MiniLM-L6-v2; gpu: bert-base-cased, roberta-base")
    parser.add_argument("--data-dir", help="GLUE TSV files (TASK/train.tsv, TASK/dev.tsv); default: the Hugging Face hub")
    parser.add_argument("--tasks", nargs="+", default=["rte", "mrpc", "cola", "stsb"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(PAPER_NAMES), choices=METHODS, metavar="METHOD",
                        help=f"of {', '.join(METHODS)} (default: {' '.join(PAPER_NAMES)}); ws-nas-<scheduler> searches ws-nas's "
                             "super-network with that scheduler")
    parser.add_argument("--epochs", type=int, help="fine-tuning / super-network / standard-NAS epochs (default: the scale's)")
    parser.add_argument("--search-budget", type=float, help="wall-clock seconds per search (default: the scale's)")
    parser.add_argument("--max-trials", type=int, help="cap on trials per search (quick runs)")
    parser.add_argument("--n-workers", type=int, help="search workers (default: the scale's)")
    parser.add_argument("--scheduler", help="the weight-sharing search's scheduler (default: search's own; the quality runs "
                        "--from-quality links used ehvi)")
    parser.add_argument("--budgets", default="0.9,0.75,0.6,0.5,0.4,0.33", help="sweep of the baselines, ratios of the prunable encoder parameters")
    parser.add_argument("--thresholds", default="0.2,0.25,0.4,0.6,0.67,0.9,1.0",
                        help="thresholds (shares of the prunable parameters) of the plot and the test-error table, besides "
                             + ", ".join(map(str, TABLE_THRESHOLDS)))
    parser.add_argument("--examples", type=int, default=2048, help="prune --examples (Fisher, head importance, mask tuning)")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--max-train-examples", type=int)
    parser.add_argument("--max-eval-examples", type=int)
    parser.add_argument("--workdir", default="runs/baselines_vs_search")
    parser.add_argument("--out-dir", default="benchmarks/results/baselines_vs_search")
    parser.add_argument("--anchors", default=str(ANCHORS), help="the paper's result tables (default: benchmarks/anchors/plm_pruning_results)")
    parser.add_argument("--collect-only", action="store_true", help="only read what the work directory has (links nothing)")
    parser.add_argument("--merge", action="store_true",
                        help="keep the rows already in --out-dir of every (method, task, seed) this run does not collect (its work "
                             "directory gone or on another machine); a run collected now replaces its earlier rows")
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
    found = collect(args, models)
    if args.merge:
        found = merge_earlier(found, out)
    write_results(found, out)
    if len(found.sizes):
        plot_sizes(found.sizes, out / "relative_to_model_size.png", Path(args.anchors))
    if len(found.by_scheduler):
        plot_sizes(found.by_scheduler, out / "relative_to_model_size_ws_nas.png", Path(args.anchors), SCHEDULERS_TABLE)
    if len(found.hypervolume):
        plot_hypervolume(found.hypervolume, out / "hypervolume.png")
    paper = [paper_kept(Path(args.anchors), list(TABLE_THRESHOLDS), table=table) for table in (SIZES_TABLE, SCHEDULERS_TABLE)]
    (out / "results.md").write_text(markdown(found, *paper, args))
    print(f"results in {out}: {len(found.sizes)} threshold rows, {len(found.hypervolume)} hypervolume points; {failed} failed step(s)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
