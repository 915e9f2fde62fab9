"""``syne-prune search``: ``syne_prune.search.run_search`` with a ``SearchConfig``. The generic options are
``SearchConfig``'s fields; each registered trial kind and backend adds its own options and reads its settings
back (``syne_prune.search.TRIAL_KINDS``, ``BACKENDS``)."""
from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path
from typing import Any

from syne_prune.artifacts import TRIALS_FILE
from syne_prune.cli.task_options import add_task_options, task_from_args
from syne_prune.options import add_option, api_kwargs, comma_list
from syne_prune.search import BACKENDS, OBJECTIVES, SCHEDULERS, TEST_SPLITS, TRIAL_KINDS, SearchConfig, get_backend, run_search


class _DeprecatedMode(argparse.Action):
    """``--mode KIND``: the earlier name of ``--trial-kind``; sets it and prints a one-line note on stderr."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option_string: str | None = None) -> None:
        print("note: --mode is deprecated; use --trial-kind", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_commands(commands: Any) -> None:
    """Add ``search`` to the ``syne-prune`` sub-command parsers."""
    parser = commands.add_parser(
        "search",
        help="multi-objective search over sub-networks (Syne Tune): weight-sharing or standard NAS",
        description="Each trial is one sub-network configuration. Weight-sharing (default, --supernet): the trial "
        "evaluates the sub-network on the validation split with the shared super-network's weights. Standard NAS "
        "(--trial-kind standard --model --task): the trial fine-tunes its own sub-network of the pre-trained model for up to "
        "--epochs epochs, reporting after each; MO-ASHA (the default there) stops weak trials by epoch. Writes "
        "trials.csv (as trials finish), pareto.csv, pareto.png, summary.json, hypervolume.csv (over wall-clock time) "
        "and Syne Tune's experiment folder (syne-tune/part-K) to --output.",
    )
    _add_search_options(parser)
    add_task_options(parser, "standard NAS: the built-in task every trial fine-tunes on (or your own data below; a weight-sharing "
                     "search reads the task from --supernet)", None)
    for kind in TRIAL_KINDS.values():
        kind.add_options(parser.add_argument_group(kind.option_group))
    for backend in BACKENDS.values():
        backend.add_options(parser)
    option = functools.partial(add_option, parser, SearchConfig)
    option("output", "search directory to create", required=True)
    parser.add_argument("--resume", action="store_true", help="continue a killed search: no finished trial lost or repeated")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    parser.set_defaults(run=cmd_search)


def _add_search_options(parser: argparse.ArgumentParser) -> None:
    """The options of every search: ``SearchConfig``'s generic fields."""
    option = functools.partial(add_option, parser, SearchConfig)
    option("trial_kind", "weight-sharing: evaluate sub-networks of --supernet; standard: fine-tune each trial's sub-network",
           choices=list(TRIAL_KINDS))
    parser.add_argument("--mode", dest="trial_kind", choices=list(TRIAL_KINDS), action=_DeprecatedMode, help=argparse.SUPPRESS)
    option("scheduler", "multi-objective scheduler (default: ehvi with --trial-kind weight-sharing, moasha with --trial-kind standard)",
           choices=list(SCHEDULERS))
    option("objectives", f"comma-separated: error plus size objectives ({', '.join(o for o in OBJECTIVES if o != 'error')})")
    option("backend", "pool: N persistent workers that load the super-network once and share its weights; "
           "local: one process per trial (Syne Tune LocalBackend); "
           "sagemaker: one SageMaker training job per trial (see the SageMaker options) "
           "(default: pool with --trial-kind weight-sharing, local with --trial-kind standard)", choices=list(BACKENDS))
    option("n_workers", "trials evaluated in parallel (default: 2); with the pool backend on GPUs the default is "
           "--workers-per-gpu per visible GPU")
    option("reproducible", "the same seed gives the same trials.csv with several workers: trials start in batches of "
           "--n-workers once every worker is free, and results reach the scheduler in trial order (costs the idle "
           "workers; not with moasha unless --n-workers 1)")
    option("max_trials", "stop after this many trials")
    option("max_wallclock_s", "stop after this many seconds", flag="--max-wallclock", metavar="SECONDS")
    option("seed", "random seed of the scheduler (and, with --trial-kind standard, of fine-tuning)")
    option("data_dir", "GLUE files; for a super-network trained on your own files, a folder holding copies of them named "
           "by split (train.csv, validation.jsonl, test.csv, ...; a saved dataset as dataset/), each checked against the "
           "sha256 recorded in training (default: where the super-network was trained from)")
    option("eval_batch_size", "examples per evaluation batch (batches are length-sorted)")
    option("max_eval_examples", "cap on validation and test examples")
    option("test_split", "which sub-networks are scored on the test split (GLUE dev), which the search never uses: "
           "pareto = the Pareto set, after the search (half the evaluation work of every-trial); "
           "every-trial = each trial, in trials.csv (default: pareto; every-trial with --backend sagemaker "
           "and with --trial-kind standard)", choices=list(TEST_SPLITS))


def cmd_search(args: argparse.Namespace) -> int:
    kind = TRIAL_KINDS[args.trial_kind]
    args.task = task_from_args(args, required=False)  # a built-in name, your own data (a TaskSpec), or None
    trial_settings = kind.settings_from_args(args)
    chosen = args.backend or kind.default_backend
    backend_settings = None
    for name in BACKENDS:  # every backend reads its options; one not chosen may refuse them
        settings = get_backend(name).settings_from_args(args, name == chosen)
        if name == chosen:
            backend_settings = settings
    config = SearchConfig(**api_kwargs(SearchConfig, args, objectives=comma_list(args.objectives), trial_settings=trial_settings,
                                       backend_settings=backend_settings))
    summary = run_search(config, resume=args.resume, overwrite=args.overwrite)
    out = Path(args.output)
    print(f"{sum(summary['trials'].values())} trials ({summary['trials']['failed']} failed), {summary['pareto_size']} on the Pareto front, "
          f"hypervolume {summary['hypervolume']:.4f}")
    print(f"Pareto table: {out / 'pareto.csv'}\nplot: {out / 'pareto.png'}\nall trials: {out / TRIALS_FILE}")
    return 0
