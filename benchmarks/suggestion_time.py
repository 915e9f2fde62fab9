"""A scheduler's own overhead: seconds per suggestion as the number of observations grows.

Each scheduler of the registry is driven through Syne Tune's scheduler interface (suggest ->
on_trial_add -> on_trial_result -> on_trial_complete), one trial at a time, on the MiniLM-L6 shape
(6 layers, 12 heads, 1536 FFN neurons) of the given search space. A trial's objectives are a cheap
synthetic function of its mask (error falls with the share of kept heads and neurons, plus noise;
params = that share), so only the scheduler is timed. Reported: the median time of the suggestions
made when 10, 25, 50, 100, 200, 300 observations were known (5 suggestions each; the
observations between checkpoints are filled with suggestions that are timed too).

    python benchmarks/suggestion_time.py --threads 2 --out benchmarks/results/suggestion_time.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
from syne_tune.backend.trial_status import Trial

from syne_prune import EncoderShape, get_search_space
from syne_prune.search import SCHEDULERS, make_scheduler

CHECKPOINTS = (10, 25, 50, 100, 200, 300)
PER_CHECKPOINT = 5
MINILM = EncoderShape(num_layers=6, num_heads=12, num_neurons=1536, hidden_size=384)


def objectives(space, config: dict, rng: np.random.RandomState) -> dict[str, float]:
    mask = space.to_mask(config)
    kept = 0.5 * float(mask.heads.float().mean()) + 0.5 * float(mask.neurons.float().mean())
    return {"error": 0.1 + 0.4 * (1 - kept) ** 2 + 0.02 * rng.rand(), "params": kept, "fidelity": 1}


def suggestion_times(name: str, space, seed: int) -> dict[int, float]:
    scheduler = make_scheduler(name, space, ["error", "params"], seed, {}, 1)
    rng = np.random.RandomState(seed)
    times: dict[int, list[float]] = {n: [] for n in CHECKPOINTS}
    for trial_id in range(CHECKPOINTS[-1] + PER_CHECKPOINT):
        start = time.perf_counter()
        suggestion = scheduler.suggest()
        elapsed = time.perf_counter() - start
        for n in CHECKPOINTS:
            if n <= trial_id < n + PER_CHECKPOINT:
                times[n].append(elapsed)
        trial = Trial(trial_id=trial_id, config=suggestion.config, creation_time=datetime.now())
        scheduler.on_trial_add(trial)
        result = objectives(space, suggestion.config, rng)
        scheduler.on_trial_result(trial, result)
        scheduler.on_trial_complete(trial, result)
    return {n: statistics.median(values) for n, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schedulers", default=",".join(SCHEDULERS))
    parser.add_argument("--search-space", default="medium")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/suggestion_time.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    space = get_search_space(args.search_space, MINILM)
    results = {}
    for name in args.schedulers.split(","):
        results[name] = suggestion_times(name, space, args.seed)
        print(name, " ".join(f"{n}:{t:.4f}s" for n, t in results[name].items()), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"search_space": args.search_space, "shape": "MiniLM-L6", "threads": args.threads,
                                          "checkpoints": CHECKPOINTS, "seconds_per_suggestion": results}, indent=2) + "\n")
    print("| scheduler | " + " | ".join(f"{n} obs" for n in CHECKPOINTS) + " |")
    print("|---|" + "---|" * len(CHECKPOINTS))
    for name, row in results.items():
        print(f"| {name} | " + " | ".join(f"{row[n]:.3f}" for n in CHECKPOINTS) + " |")


if __name__ == "__main__":
    main()
