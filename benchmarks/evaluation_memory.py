"""Resident memory and time of a long-lived evaluator scoring many sub-networks, with and without many_shapes.

Each mode runs in a fresh process: a ``syne_prune.search.trial.Evaluator`` on ``--supernet`` scores ``--subnets``
configurations drawn as ``blackbox record`` draws them, through ``Evaluator.evaluate`` (``many_shapes``: oneDNN
off, freed heap trimmed) or its inner ``_evaluate`` (``plain``: as before). Reports, per mode, the growth of
resident memory (MB per sub-network, from after the 10th to the last) and the median measured evaluation seconds.

    HF_HUB_OFFLINE=1 python benchmarks/evaluation_memory.py --supernet runs/bb/supernets/stsb \\
        --data-dir $GLUE_DIR --subnets 300 --max-eval-examples 400
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

MODES = ("plain", "many_shapes")


def resident_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_mode(args) -> dict:
    import numpy as np

    from syne_prune.blackbox.record import draw_configurations
    from syne_prune.search import Evaluator, TrialSettings

    evaluator = Evaluator(TrialSettings(supernet=args.supernet, objectives=("error", "params", "macs"), fidelity_levels=9,
                                        data_dir=args.data_dir, max_eval_examples=args.max_eval_examples))
    score = evaluator.evaluate if args.mode == "many_shapes" else evaluator._evaluate
    seconds, start = [], None
    for index, config in enumerate(draw_configurations(evaluator.space, args.subnets, args.seed)):
        seconds.append(score(config, lambda result: None)["eval_s"])
        if index == 9:
            start = resident_mb()
    end = resident_mb()
    return {"mode": args.mode, "subnets": len(seconds), "mb_per_subnet": (end - start) / max(len(seconds) - 10, 1),
            "resident_mb_end": end, "median_eval_s": float(np.median(seconds))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--supernet", required=True)
    parser.add_argument("--data-dir", help="GLUE TSV files (TASK/train.tsv, TASK/dev.tsv); default: the ones the super-network was trained on")
    parser.add_argument("--subnets", type=int, default=300)
    parser.add_argument("--max-eval-examples", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mode", choices=MODES, help="(internal) run one mode in this process")
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args)), flush=True)
        return
    for mode in MODES:
        command = [sys.executable, __file__, "--supernet", args.supernet, *(["--data-dir", args.data_dir] if args.data_dir else []),
                   "--subnets", str(args.subnets),
                   "--max-eval-examples", str(args.max_eval_examples), "--seed", str(args.seed), "--mode", mode]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        print(output.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
