"""Every scheduler × 10 seeds × 500 trials on blackboxes of real all-MiniLM-L6-v2 super-networks (MRPC, STS-B).

Per task: reuse the super-network in ``--supernet-dir/TASK`` (train it as benchmarks/search_schedulers.py
does, if it is not there), record ``--samples`` of its sub-networks into ``--out/TASK/blackbox`` and replay
every scheduler on it with ``syne-prune benchmark`` into ``--out/TASK/benchmark``. Everything resumes:
recorded sub-networks are skipped, finished replays (``runs/<scheduler>/seed-<k>.csv``) are kept; run the
same command again after an interruption.

    HF_HUB_OFFLINE=1 python benchmarks/blackbox_schedulers.py --data-dir $GLUE_DIR \\
        --tasks mrpc stsb --supernet-dir /tmp/supernets --samples 1000 --seeds 10 --trials 500 \\
        --out benchmarks/results/blackbox
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from syne_prune.blackbox.benchmark import BenchmarkConfig, run_benchmark
from syne_prune.blackbox.record import RecordConfig, record_samples
from syne_prune.cores import usable_cores
from syne_prune.search import SCHEDULERS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="GLUE TSV files (TASK/train.tsv, TASK/dev.tsv); default: the Hugging Face hub")
    parser.add_argument("--tasks", nargs="+", default=["mrpc", "stsb"])
    parser.add_argument("--supernet-dir", required=True, help="super-networks in DIR/TASK (trained here if missing)")
    parser.add_argument("--samples", type=int, default=1000, help="sub-networks recorded per task")
    parser.add_argument("--record-workers", type=int, default=1)
    parser.add_argument("--fidelity-levels", type=int, default=9)
    parser.add_argument("--max-eval-examples", type=int, default=400, help="as benchmarks/search_schedulers.py")
    parser.add_argument("--schedulers", default=",".join(SCHEDULERS))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--workers", type=int, default=1, help="simulated workers per replay")
    parser.add_argument("--surrogate", default="auto")
    parser.add_argument("--jobs", type=int, default=usable_cores(),
                        help="replays at once, in worker processes; the results do not depend on it (default: the usable CPU cores)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    for task in args.tasks:
        supernet = Path(args.supernet_dir) / task
        if not (supernet / "supernet.json").is_file():
            import search_schedulers as trainer  # benchmarks/ is on sys.path when this script runs

            trainer.supernet(argparse.Namespace(supernet_dir=args.supernet_dir, data_dir=args.data_dir, search_space="small",
                                                strategy="sandwich", epochs=3, lr=5e-5, max_train_examples=2000,
                                                max_eval_examples=args.max_eval_examples, seed=0), task)
        started = time.time()
        recorded = record_samples(RecordConfig(supernet=str(supernet), output=str(Path(args.out) / task / "blackbox"), samples=args.samples,
                                               n_workers=args.record_workers, fidelity_levels=args.fidelity_levels, data_dir=args.data_dir,
                                               max_eval_examples=args.max_eval_examples))
        print(task, "blackbox:", json.dumps(recorded), flush=True)
        summary = run_benchmark(BenchmarkConfig(blackbox=str(Path(args.out) / task / "blackbox"), output=str(Path(args.out) / task / "benchmark"),
                                                schedulers=tuple(args.schedulers.split(",")), seeds=args.seeds, max_trials=args.trials,
                                                n_workers=args.workers, surrogate=args.surrogate, supernet=str(supernet),
                                                jobs=args.jobs))
        print(task, f"done in {time.time() - started:.0f} s:", json.dumps(summary["schedulers"], indent=1), flush=True)


if __name__ == "__main__":
    main()
