"""``syne-prune blackbox record`` and ``syne-prune benchmark`` (added to the main parser by syne_prune/cli.py)."""
from __future__ import annotations

import argparse

from syne_prune.errors import SynePruneError


def cmd_blackbox_record(args: argparse.Namespace) -> int:
    from syne_prune.blackbox.record import RecordConfig, record_from_trials, record_samples

    if (args.supernet is None) == (args.from_trials is None):
        raise SynePruneError("give --supernet DIR with --samples N (evaluate sampled sub-networks) or --from-trials SEARCH_DIR[,...]")
    if args.from_trials is not None:
        if args.samples is not None:
            raise SynePruneError("--from-trials takes the searches' trials; drop --samples (it goes with --supernet)")
        summary = record_from_trials([d for d in args.from_trials.split(",") if d], args.output)
    else:
        if args.samples is None:
            raise SynePruneError("--supernet needs --samples N: how many sub-networks to evaluate")
        summary = record_samples(RecordConfig(supernet=args.supernet, output=args.output, samples=args.samples, seed=args.seed,
                                              n_workers=args.n_workers, fidelity_levels=args.fidelity_levels,
                                              max_eval_examples=args.max_eval_examples, data_dir=args.data_dir,
                                              eval_batch_size=args.eval_batch_size), progress=not args.quiet)
    print(f"blackbox {summary['output']}: {summary['recorded']} sub-network(s) recorded, {summary['skipped']} already there, "
          f"{summary['rows']} in all")
    return 0


def cmd_benchmark(args: argparse.Namespace) -> int:
    from syne_prune.blackbox.benchmark import BenchmarkConfig, run_benchmark

    config = BenchmarkConfig(blackbox=args.blackbox, output=args.output, schedulers=tuple(s for s in args.schedulers.split(",") if s),
                             seeds=args.seeds, max_trials=args.max_trials, max_wallclock_s=args.max_wallclock, n_workers=args.n_workers,
                             surrogate=args.surrogate, objectives=tuple(args.objectives.split(",")), supernet=args.supernet)
    summary = run_benchmark(config, overwrite=args.overwrite, progress=not args.quiet)
    for name, values in summary["schedulers"].items():
        low, high = values["interval"]
        print(f"{name:13s} hypervolume {values['hypervolume']:.4f} [{low:.4f}, {high:.4f}]  rank {values['rank_end']:.2f}")
    print(f"surrogate: {summary['surrogate']}; report in {args.output}/report.md")
    return 0


def add_commands(commands) -> None:
    """Add ``blackbox`` (with ``record``) and ``benchmark`` to the ``syne-prune`` sub-command parsers."""
    from syne_prune.data import EVAL_BATCH_SIZE
    from syne_prune.search.schedulers import SCHEDULERS

    blackbox = commands.add_parser("blackbox", help="record a blackbox of evaluated sub-networks (for benchmark)",
                                   description="Tabulate evaluated sub-networks of a super-network once; 'benchmark' replays searches on it.")
    record = blackbox.add_subparsers(dest="blackbox_command", required=True, metavar="COMMAND", help="record").add_parser(
        "record", help="evaluate sampled sub-networks (or take a search's trials) into a blackbox directory",
        description="Evaluate N sub-networks (largest, smallest, midpoint, then seeded uniform samples; distinct masks) with the "
        "search trial code, appending each row as it finishes; re-running skips recorded ones. Or --from-trials: the completed "
        "trials of finished searches. File format: README, 'Benchmarking schedulers'.")
    record.add_argument("--supernet", help="super-network directory (train-supernet --output)")
    record.add_argument("--samples", type=int, help="sub-networks to evaluate (with --supernet)")
    record.add_argument("--from-trials", metavar="SEARCH_DIR[,...]", help="take the completed trials of these searches instead")
    record.add_argument("--output", required=True, help="blackbox directory (created, or continued if it holds the same settings)")
    record.add_argument("--seed", type=int, default=0, help="seed of the uniform samples (default 0)")
    record.add_argument("--n-workers", type=int, default=1, help="worker processes, each with its own copy of the super-network")
    record.add_argument("--fidelity-levels", type=int, default=9, help="validation chunks; the error after each is recorded (MO-ASHA levels, default 9)")
    record.add_argument("--max-eval-examples", type=int, help="evaluate on at most this many validation/test examples (default: all)")
    record.add_argument("--data-dir", help="GLUE data directory (default: the one the super-network was trained on)")
    record.add_argument("--eval-batch-size", type=int, default=EVAL_BATCH_SIZE, help=f"evaluation batch size (default {EVAL_BATCH_SIZE})")
    record.add_argument("--quiet", action="store_true", help="no progress bar")
    record.set_defaults(run=cmd_blackbox_record)

    bench = commands.add_parser("benchmark", help="compare schedulers over many seeds on a blackbox, in simulated time",
                                description="Replay each scheduler x seed against a blackbox in Syne Tune's simulator (recorded values for "
                                "recorded sub-networks, a surrogate for the others); report hypervolume over simulated time and trials, "
                                "ranks and Pareto sets. Re-running with the same settings continues (finished replays are kept).")
    bench.add_argument("--blackbox", required=True, help="blackbox directory (blackbox record --output)")
    bench.add_argument("--output", required=True, help="benchmark directory")
    bench.add_argument("--schedulers", default=",".join(SCHEDULERS), help=f"comma-separated (default: all, {','.join(SCHEDULERS)})")
    bench.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 per scheduler")
    bench.add_argument("--max-trials", type=int, help="trials per replay")
    bench.add_argument("--max-wallclock", type=float, help="simulated seconds per replay (recorded evaluation times)")
    bench.add_argument("--n-workers", type=int, default=1, help="simulated parallel workers")
    bench.add_argument("--surrogate", default="auto", choices=["auto", "knn", "rf", "none"],
                       help="for unrecorded sub-networks: auto (lower held-out error of knn and rf), knn, rf, or none (only recorded "
                       "sub-networks: suggestions snap to the nearest recorded one)")
    bench.add_argument("--objectives", default="error,params", help="error,params, error,macs or error,params,macs")
    bench.add_argument("--supernet", help="refuse the blackbox unless it was recorded from this super-network")
    bench.add_argument("--overwrite", action="store_true", help="replace an --output that holds other settings")
    bench.add_argument("--quiet", action="store_true", help="no progress bar")
    bench.set_defaults(run=cmd_benchmark)
