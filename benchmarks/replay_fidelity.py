"""Replays against reality: real searches on a MiniLM super-network beside their replays in the simulator.

For every ``SCHEDULER:SEED`` of ``--searches`` this script runs a real search (``syne-prune search``, pool backend,
1 worker, ``--max-trials``, the blackbox's ``--max-eval-examples`` and fidelity levels) and replays the same
scheduler and seed twice (``syne_prune.blackbox.simulate.replay``, 1 simulated worker, as many trials):

- ``own``: on a blackbox of the real search's own trials (``blackbox record --from-trials``) with ``--surrogate
  none``. Every sub-network the scheduler suggests is then recorded, so a faithful replay starts the same
  trials in the same order with the same objective values (``same_prefix`` counts the leading trials that do).
- ``sampled``: on ``--blackbox`` (uniform samples of the same super-network; ``blackbox record --samples N``)
  with ``--surrogate auto``: what a benchmark of schedulers sees for sub-networks that were never recorded.

Each search's hypervolume (reference point 1, error and params) is traced over finished trials and over
seconds: wall-clock seconds of the real search, simulated seconds (the recorded evaluation seconds) of a replay.
Writes ``--out/replay_fidelity.csv`` (search, kind, trials, seconds, hypervolume), ``replay_fidelity.md``
(final hypervolume and at 25/50% of the trials, same_prefix, seconds per trial) and ``replay_fidelity.png``.
Real searches resume (a finished one is kept); replays are recomputed (seconds each, EHVI a minute).

    HF_HUB_OFFLINE=1 python benchmarks/replay_fidelity.py --supernet runs/bb/supernets/mrpc \\
        --blackbox runs/bb/mrpc/blackbox --data-dir $GLUE_DIR --workdir runs/replay_fidelity/mrpc \\
        --out benchmarks/results/blackbox/mrpc/replay_fidelity
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from syne_prune import artifacts
from syne_prune.blackbox import format as F
from syne_prune.blackbox.record import record_from_trials
from syne_prune.blackbox.report import hypervolume_trace
from syne_prune.blackbox.simulate import replay
from syne_prune.blackbox.surrogate import Surrogate, choose, held_out_errors

OBJECTIVES = ["error", "params"]
GAP_FLOOR = 1e-5  # log axis of the plot: smaller gaps are drawn at it


def real_search(args, scheduler: str, seed: int, directory: Path) -> pd.DataFrame:
    """Run (or resume, or reuse when finished) the real search; returns its trials with ``end_s`` = wall-clock seconds."""
    if not (directory / artifacts.SUMMARY_FILE).is_file():
        header = F.read_header(args.blackbox)
        command = [sys.executable, "-m", "syne_prune", "search", "--supernet", args.supernet, "--scheduler", scheduler,
                   "--seed", str(seed), "--n-workers", "1", "--max-trials", str(args.max_trials), *(["--data-dir", args.data_dir] if args.data_dir else []),
                   "--max-eval-examples", str(header["max_eval_examples"]), "--fidelity-levels", str(header["fidelity_levels"]),
                   "--output", str(directory)]
        if (directory / artifacts.TRIALS_FILE).is_file():
            command.append("--resume")
        subprocess.run(command, check=True)
    trials = artifacts.read_trials(directory / artifacts.TRIALS_FILE)
    return trials.assign(end_s=trials["finished_s"])


def own_replay(real_dir: Path, scheduler: str, seed: int, trials: int, work: Path) -> pd.DataFrame:
    """The replay on a blackbox of the real search's own trials, with no surrogate."""
    blackbox = work / "own-blackbox"
    shutil.rmtree(work, ignore_errors=True)
    record_from_trials([str(real_dir)], str(blackbox))
    return replay(F.read_blackbox(blackbox), None, scheduler, seed, OBJECTIVES, 1, trials, None, str(work / "syne-tune"))


def same_prefix(real: pd.DataFrame, replayed: pd.DataFrame, names: list[str]) -> int:
    """Leading trials (in start order) with the same configuration and the same error and params (to 1e-12)."""
    a, b = real.sort_values("trial_id"), replayed.sort_values("trial_id")
    count = 0
    for x, y in zip(a.to_dict("records"), b.to_dict("records")):
        if any(int(x[n]) != int(y[n]) for n in names) or any(abs(float(x[o]) - float(y[o])) > 1e-12 for o in OBJECTIVES):
            break
        count += 1
    return count


def traces(kind: str, search: str, trials: pd.DataFrame) -> pd.DataFrame:
    trace = hypervolume_trace(trials, OBJECTIVES, 1)
    return trace.rename(columns={"end_s": "seconds"}).assign(search=search, kind=kind)


def table(curves: pd.DataFrame, facts: list[dict]) -> str:
    lines = ["| search | kind | trials | HV at 25% | HV at 50% | final HV | seconds | seconds per trial | same prefix |",
             "|---|---|---|---|---|---|---|---|---|"]
    for fact in facts:
        curve = curves[(curves["search"] == fact["search"]) & (curves["kind"] == fact["kind"])]
        n = len(curve)
        at = [curve["hypervolume"].iloc[max(0, int(n * q) - 1)] for q in (0.25, 0.5)] if n else [0.0, 0.0]
        seconds = float(curve["seconds"].max()) if n else 0.0
        lines.append(f"| {fact['search']} | {fact['kind']} | {n} | {at[0]:.4f} | {at[1]:.4f} | "
                     f"{curve['hypervolume'].iloc[-1] if n else 0.0:.4f} | {seconds:.0f} | {seconds / max(n, 1):.2f} | "
                     f"{fact.get('same_prefix', '')} |")
    return "\n".join(lines) + "\n"


def plot(curves: pd.DataFrame, path: Path) -> None:
    import matplotlib  # heavy, and its backend must be chosen before pyplot is imported

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # slow to import; only when a plot is drawn

    searches = list(dict.fromkeys(curves["search"]))
    fig, axes = plt.subplots(2, len(searches), figsize=(4.2 * len(searches), 6.4), squeeze=False)
    for column, search in enumerate(searches):
        mine = curves[curves["search"] == search]
        best = float(mine["hypervolume"].max())  # the curves differ in the third decimal: gap to the best, log axis
        for kind, style in (("real", "-"), ("own", "--"), ("sampled", ":")):
            curve = mine[mine["kind"] == kind]
            for row, key in enumerate(("trials", "seconds")):
                axes[row][column].step(curve[key], (best - curve["hypervolume"]).clip(lower=GAP_FLOOR), where="post",
                                       linestyle=style, label=kind)
                axes[row][column].set_yscale("log")
                axes[row][column].set_ylabel(f"{best:.4f} − hypervolume")
        axes[0][column].set_title(search)
        axes[0][column].set_xlabel("finished trials")
        axes[1][column].set_xlabel("seconds (real: wall clock; replays: simulated)")
    axes[0][0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--supernet", required=True, help="the super-network the blackbox was recorded from")
    parser.add_argument("--blackbox", required=True, help="blackbox of uniform samples of --supernet")
    parser.add_argument("--data-dir", help="GLUE TSV files (TASK/train.tsv, TASK/dev.tsv); default: the ones the super-network was trained on")
    parser.add_argument("--searches", nargs="+", default=["ehvi:0", "morea:1", "local_search:2"], help="SCHEDULER:SEED")
    parser.add_argument("--max-trials", type=int, default=100)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--plot-only", action="store_true", help="redraw the plot from --out's replay_fidelity.csv")
    args = parser.parse_args()
    if args.plot_only:
        plot(pd.read_csv(Path(args.out) / "replay_fidelity.csv"), Path(args.out) / "replay_fidelity.png")
        return
    sampled = F.read_blackbox(args.blackbox, args.supernet)
    surrogate = Surrogate(sampled, choose(held_out_errors(sampled)))
    out, work = Path(args.out), Path(args.workdir)
    out.mkdir(parents=True, exist_ok=True)
    curves, facts = [], []
    for item in args.searches:
        scheduler, seed = item.split(":")[0], int(item.split(":")[1])
        name, place = f"{scheduler} seed {seed}", work / f"{scheduler}-seed{seed}"
        real = real_search(args, scheduler, seed, place / "real")
        started = time.perf_counter()
        own = own_replay(place / "real", scheduler, seed, len(real), place / "own")
        print(name, f"own replay {time.perf_counter() - started:.1f} s", flush=True)
        shutil.rmtree(place / "sampled", ignore_errors=True)
        other = replay(sampled, surrogate, scheduler, seed, OBJECTIVES, 1, len(real), None, str(place / "sampled"))
        names = sampled.names
        facts += [{"search": name, "kind": "real"}, {"search": name, "kind": "own", "same_prefix": same_prefix(real, own, names)},
                  {"search": name, "kind": "sampled", "same_prefix": same_prefix(real, other, names)}]
        curves += [traces("real", name, real), traces("own", name, own), traces("sampled", name, other)]
        frame = pd.concat(curves, ignore_index=True)  # written after every search: a long run keeps what it has
        frame.to_csv(out / "replay_fidelity.csv", index=False, float_format="%.10g")
        (out / "replay_fidelity.md").write_text(f"surrogate of the sampled blackbox: {surrogate.kind}\n\n" + table(frame, facts))
        plot(frame, out / "replay_fidelity.png")


if __name__ == "__main__":
    main()
