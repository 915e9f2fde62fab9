"""Where a weight-sharing search spends its time: `--backend local` against `--backend pool`.

1. The same search twice, one after the other in one run (same super-network, scheduler, seed,
   trial budget and workers): once with Syne Tune's LocalBackend (a process per trial), once with the
   pool of persistent workers. Reported per backend: wall time, evaluations per minute, the summed
   pure evaluation time (``eval_s`` of every trial: extraction + validation + test pass) and two
   overhead ratios: ``wall / summed eval`` (the overhead's definition; with W workers evaluating in
   parallel its ideal is 1/W) and ``W x wall / summed eval`` (per worker; ideal 1).
2. Evaluation time of uniform sub-networks keeping ~25/50/75% of the prunable parameters (every layer,
   that share of heads and FFN neurons) relative to the full network, measured with the trial code
   (``Evaluator.evaluate``) in one process with one thread, round-robin over ``--repeats`` rounds;
   medians.
3. Evaluation batching: one full-network pass over the validation and test examples with the batches
   as they come (64 per batch, padded to each batch's longest) against length-sorted batches
   (``eval_batches``, 16/32/64 per batch); one thread, round-robin over ``--repeats`` rounds, medians.
4. Memory of the pool: unique (USS) and proportional (PSS) memory of the backend process and of each
   worker, with the super-network in shared memory and with each worker loading it itself.

    python benchmarks/pool_vs_local.py --supernet SUPERNET --trials 200 --workers 2 --scheduler morea \\
        --out benchmarks/results/pool_vs_local.json
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from syne_prune.search import Evaluator, SearchConfig, TrialSettings, WeightSharingSettings, run_search

FRACTIONS = (1.0, 0.75, 0.5, 0.25)


def search(backend: str, args, workdir: Path) -> dict:
    out = workdir / backend
    config = SearchConfig(trial_settings=WeightSharingSettings(args.supernet), output=str(out), scheduler=args.scheduler, backend=backend,
                          n_workers=args.workers, max_trials=args.trials, seed=args.seed, data_dir=args.data_dir,
                          max_eval_examples=args.max_eval_examples, test_split=args.test_split)
    started = time.perf_counter()
    summary = run_search(config, overwrite=True)
    whole = time.perf_counter() - started  # + start-up, the Pareto set's test split (--test-split pareto), outputs
    trials = pd.read_csv(out / "trials.csv")
    done = trials[trials["status"] == "completed"]
    wall, evaluation = summary["wallclock_s"], float(trials["eval_s"].sum())
    return {
        "backend": backend, "trials": len(trials), "completed": len(done), "failed": int((trials["status"] == "failed").sum()),
        "test_split": args.test_split, "wall_s": wall, "run_search_s": whole, "evaluations_per_minute": 60 * len(trials) / wall, "summed_eval_s": evaluation,
        "median_eval_s": float(trials["eval_s"].median()), "median_setup_s": float(trials["setup_s"].median()),
        "overhead_wall_over_summed_eval": wall / evaluation,
        "overhead_per_worker": args.workers * wall / evaluation,
        "hypervolume": summary["hypervolume"],
        "workers": json.loads((out / "syne-tune" / "part-0" / "pool" / "workers.json").read_text()) if backend == "pool" else None,
    }


def uniform_config(space, fraction: float) -> dict[str, int]:
    shape = space.shape
    heads, units = max(1, round(fraction * shape.num_heads)), max(1, round(fraction * shape.num_neurons))
    return {name: heads if name.startswith("num_heads") else units for name in space.config_space}


def evaluation_scaling(args) -> dict:
    import torch

    torch.set_num_threads(1)  # as a pool worker on 2 cores with 2 workers
    evaluator = Evaluator(TrialSettings(supernet=args.supernet, data_dir=args.data_dir, max_eval_examples=args.max_eval_examples))
    if evaluator.space.name != "medium":
        raise SystemExit("the scaling measurement uses the medium space's uniform configurations")
    times = {f: [] for f in FRACTIONS}
    params = {}
    for _ in range(args.repeats):
        for fraction in FRACTIONS:
            result = evaluator.evaluate(uniform_config(evaluator.space, fraction), lambda r: None)
            times[fraction].append(result["eval_s"])
            params[fraction] = result["params"]
    full = statistics.median(times[1.0])
    return {str(f): {"params": params[f], "median_eval_s": statistics.median(times[f]),
                     "relative_to_full": statistics.median(times[f]) / full} for f in FRACTIONS}


def evaluation_batching(args) -> dict:
    import torch

    from syne_prune.data import data_loader, encode, eval_batches, load_task
    from syne_prune.evaluation import predict
    from syne_prune.surgery import extract_subnetwork

    torch.set_num_threads(1)
    evaluator = Evaluator(TrialSettings(supernet=args.supernet, data_dir=args.data_dir, max_eval_examples=args.max_eval_examples))
    hp, tokenizer = evaluator.supernet.metadata["hyperparameters"], evaluator.supernet.tokenizer
    data = load_task(evaluator.supernet.metadata["task"], args.data_dir or hp.get("data_dir"), hp["validation_fraction"],
                     hp["seed"], max_train_examples=1, max_eval_examples=args.max_eval_examples)
    examples = [e for split in (data.validation, data.test) for e in encode(split, tokenizer, hp["max_length"], evaluator.task.is_regression)]
    model = extract_subnetwork(evaluator.supernet.model, evaluator.space.to_mask(uniform_config(evaluator.space, 1.0))).eval()
    variants = {"unsorted_64": list(data_loader(examples, tokenizer, 64)),
                **{f"sorted_{size}": eval_batches(examples, tokenizer, size) for size in (16, 32, 64)}}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, batches in variants.items():
            started = time.perf_counter()
            predict(model, batches, evaluator.task.is_regression)
            times[name].append(time.perf_counter() - started)
    base = statistics.median(times["unsorted_64"])
    return {"examples": len(examples), **{name: {"median_s": statistics.median(t), "relative_to_unsorted_64": statistics.median(t) / base,
                                                  "padded_tokens": sum(b["input_ids"].numel() for b in variants[name])}
                                           for name, t in times.items()}}


def memory(args, workdir: Path) -> dict:
    import psutil

    from syne_prune.search import PoolBackend

    out = {}
    for shared in (True, False):
        backend = PoolBackend(TrialSettings(supernet=args.supernet, data_dir=args.data_dir, max_eval_examples=args.max_eval_examples),
                              args.workers, workdir / f"memory-{shared}", entry_point=__file__, share_weights=shared)
        backend.start(progress=False)
        try:
            processes = [psutil.Process()] + [psutil.Process(pid) for pid in backend.worker_pids()]
            info = [p.memory_full_info() for p in processes]
            out["shared_memory" if shared else "each_worker_loads"] = {
                "uss_mb": [i.uss / 2**20 for i in info], "pss_mb": [i.pss / 2**20 for i in info],
                "total_pss_mb": sum(i.pss for i in info) / 2**20,
                "workers": json.loads((workdir / f"memory-{shared}" / "workers.json").read_text())["workers"],
            }
        finally:
            backend.close()
    out["weights_mb"] = sum(p.stat().st_size for p in Path(args.supernet).glob("*.safetensors")) / 2**20
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--supernet", required=True)
    parser.add_argument("--data-dir")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scheduler", default="morea")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-eval-examples", type=int)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--test-split", default="pareto", choices=["pareto", "every-trial"])
    parser.add_argument("--parts", default="search,scaling,batching,memory")
    parser.add_argument("--out", default="benchmarks/results/pool_vs_local.json")
    args = parser.parse_args()
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    workdir = Path(tempfile.mkdtemp(prefix="pool-vs-local-"))
    try:
        parts = args.parts.split(",")
        if "search" in parts:
            # the data folder as $GLUE_DIR: a record names no machine's path
            results["settings"] = dict(vars(args), data_dir="$GLUE_DIR" if args.data_dir else None)
            results["search"] = [search(backend, args, workdir) for backend in ("local", "pool")]
            local, pool = results["search"]
            results["pool_over_local_evaluations_per_minute"] = pool["evaluations_per_minute"] / local["evaluations_per_minute"]
            out.write_text(json.dumps(results, indent=2) + "\n")
        if "scaling" in parts:
            results["evaluation_scaling"] = evaluation_scaling(args)
            out.write_text(json.dumps(results, indent=2) + "\n")
        if "batching" in parts:
            results["evaluation_batching"] = evaluation_batching(args)
            out.write_text(json.dumps(results, indent=2) + "\n")
        if "memory" in parts:
            results["memory"] = memory(args, workdir)
            out.write_text(json.dumps(results, indent=2) + "\n")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
