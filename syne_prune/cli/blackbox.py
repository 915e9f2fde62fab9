"""``syne-prune blackbox record`` (``RecordConfig``) and ``syne-prune benchmark`` (``BenchmarkConfig``): tabulate
evaluated sub-networks once, then compare schedulers on them; defaults are the two dataclasses'."""
from __future__ import annotations

import argparse
import functools
from typing import Any

from syne_prune.blackbox import SURROGATES, BenchmarkConfig, RecordConfig, record_from_trials, record_samples, run_benchmark
from syne_prune.cores import usable_cores
from syne_prune.errors import SynePruneError
from syne_prune.options import add_option, api_kwargs
from syne_prune.search import SCHEDULERS


def add_commands(commands: Any) -> None:
    """Add ``blackbox`` (with ``record``) and ``benchmark`` to the ``syne-prune`` sub-command parsers."""
    blackbox = commands.add_parser("blackbox", help="record a blackbox of evaluated sub-networks (for benchmark)",
                                   description="Tabulate evaluated sub-networks of a super-network once; 'benchmark' replays searches on it.")
    record = blackbox.add_subparsers(dest="blackbox_command", required=True, metavar="COMMAND", help="record").add_parser(
        "record", help="evaluate sampled sub-networks (or take a search's trials) into a blackbox directory",
        description="Evaluate N sub-networks (largest, smallest, midpoint, then seeded uniform samples; distinct masks) with the "
        "search trial code, appending each row as it finishes; re-running skips recorded ones. Or --from-trials: the completed "
        "trials of finished searches. File format: docs/commands/blackbox-record.md.")
    option = functools.partial(add_option, record, RecordConfig)
    option("supernet", "super-network directory (train-supernet --output)")
    option("samples", "sub-networks to evaluate (with --supernet)")
    record.add_argument("--from-trials", metavar="SEARCH_DIR[,...]", help="take the completed trials of these searches instead")
    option("output", "blackbox directory (created, or continued if it holds the same settings)", required=True)
    option("seed", "seed of the uniform samples")
    option("n_workers", "worker processes, each with its own copy of the super-network")
    option("fidelity_levels", "validation chunks; the error after each is recorded (MO-ASHA levels)")
    option("max_eval_examples", "evaluate on at most this many validation/test examples (default: all)")
    option("data_dir", "GLUE data directory (default: the one the super-network was trained on)")
    option("eval_batch_size", "evaluation batch size (examples)")
    record.add_argument("--quiet", action="store_true", help="no progress bar")
    record.set_defaults(run=cmd_blackbox_record)
    _add_benchmark(commands)


def _add_benchmark(commands: Any) -> None:
    bench = commands.add_parser("benchmark", help="compare schedulers over many seeds on a blackbox, in simulated time",
                                description="Replay each scheduler x seed against a blackbox in Syne Tune's simulator (recorded values for "
                                "recorded sub-networks, a surrogate for the others); report hypervolume over simulated time and trials, "
                                "ranks and Pareto sets. Re-running with the same settings continues (finished replays are kept).")
    option = functools.partial(add_option, bench, BenchmarkConfig)
    option("blackbox", "blackbox directory (blackbox record --output)", required=True)
    option("output", "benchmark directory", required=True)
    option("schedulers", f"comma-separated, of {','.join(SCHEDULERS)}")
    option("seeds", "seeds 0..N-1 per scheduler")
    option("max_trials", "trials per replay")
    option("max_wallclock_s", "simulated seconds per replay (recorded evaluation times)", flag="--max-wallclock", metavar="SECONDS")
    option("n_workers", "simulated parallel workers")
    option("surrogate", "for unrecorded sub-networks: auto (lower held-out error of knn and rf), knn, rf, or none (only recorded "
           "sub-networks: suggestions snap to the nearest recorded one)", choices=list(SURROGATES))
    option("objectives", "error,params, error,macs or error,params,macs")
    option("supernet", "refuse the blackbox unless it was recorded from this super-network")
    option("jobs", "replays run at once, in worker processes (1: in this process), each with one torch thread; the results do not "
           f"depend on it (default: the usable CPU cores, here {usable_cores()})", metavar="N")
    bench.add_argument("--overwrite", action="store_true", help="replace an --output that holds other settings")
    bench.add_argument("--quiet", action="store_true", help="no progress bar")
    bench.set_defaults(run=cmd_benchmark)


def cmd_blackbox_record(args: argparse.Namespace) -> int:
    if (args.supernet is None) == (args.from_trials is None):
        raise SynePruneError("give --supernet DIR with --samples N (evaluate sampled sub-networks) or --from-trials SEARCH_DIR[,...]")
    if args.from_trials is not None:
        if args.samples is not None:
            raise SynePruneError("--from-trials takes the searches' trials; drop --samples (it goes with --supernet)")
        summary = record_from_trials([d for d in args.from_trials.split(",") if d], args.output)
    else:
        if args.samples is None:
            raise SynePruneError("--supernet needs --samples N: how many sub-networks to evaluate")
        summary = record_samples(RecordConfig(**api_kwargs(RecordConfig, args)), progress=not args.quiet)
    print(f"blackbox {summary['output']}: {summary['recorded']} sub-network(s) recorded, {summary['skipped']} already there, "
          f"{summary['rows']} in all")
    return 0


def cmd_benchmark(args: argparse.Namespace) -> int:
    config = BenchmarkConfig(**api_kwargs(BenchmarkConfig, args, schedulers=tuple(s for s in args.schedulers.split(",") if s),
                                          objectives=tuple(args.objectives.split(","))))
    summary = run_benchmark(config, overwrite=args.overwrite, progress=not args.quiet)
    for name, values in summary["schedulers"].items():
        low, high = values["interval"]
        print(f"{name:13s} hypervolume {values['hypervolume']:.4f} [{low:.4f}, {high:.4f}]  rank {values['rank_end']:.2f}")
    print(f"surrogate: {summary['surrogate']}; report in {args.output}/report.md")
    return 0
