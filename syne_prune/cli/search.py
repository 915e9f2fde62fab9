"""``syne-prune search``: ``syne_prune.search.run_search`` with a ``SearchConfig`` (weight-sharing) or, with
``--mode standard``, a ``FineTuneSettings`` per trial; the defaults are those of the two dataclasses."""
from __future__ import annotations

import argparse
import functools
from pathlib import Path
from typing import Any

from syne_prune.artifacts import TRIALS_FILE
from syne_prune.cli.options import add_option, api_kwargs, comma_list
from syne_prune.cli.sagemaker import _sagemaker_settings, add_sagemaker_arguments
from syne_prune.data import TASKS
from syne_prune.errors import SynePruneError
from syne_prune.search import SCHEDULERS, SearchConfig, run_search
from syne_prune.search.finetune import FineTuneSettings
from syne_prune.search.run import BACKENDS, MODES, TEST_SPLITS
from syne_prune.search.trial import OBJECTIVES
from syne_prune.search_spaces import SEARCH_SPACES


def add_commands(commands: Any) -> None:
    """Add ``search`` to the ``syne-prune`` sub-command parsers."""
    parser = commands.add_parser(
        "search",
        help="multi-objective search over sub-networks (Syne Tune): weight-sharing or standard NAS",
        description="Each trial is one sub-network configuration. Weight-sharing (default, --supernet): the trial "
        "evaluates the sub-network on the validation split with the shared super-network's weights. Standard NAS "
        "(--mode standard --model --task): the trial fine-tunes its own sub-network of the pre-trained model for up to "
        "--epochs epochs, reporting after each; MO-ASHA (the default there) stops weak trials by epoch. Writes "
        "trials.csv (as trials finish), pareto.csv, pareto.png, summary.json, hypervolume.csv (over wall-clock time) "
        "and Syne Tune's experiment folder (syne-tune/part-K) to --output.",
    )
    _add_search_options(parser)
    _add_standard_options(parser.add_argument_group("standard NAS (--mode standard): how every trial fine-tunes its sub-network"))
    add_sagemaker_arguments(parser)
    option = functools.partial(add_option, parser, SearchConfig)
    option("output", "search directory to create", required=True)
    parser.add_argument("--resume", action="store_true", help="continue a killed search: no finished trial lost or repeated")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    parser.set_defaults(run=cmd_search)


def _add_search_options(parser: argparse.ArgumentParser) -> None:
    """The options of every search: ``SearchConfig``'s fields."""
    option = functools.partial(add_option, parser, SearchConfig)
    # the first mode is SearchConfig's (no FineTuneSettings: weight-sharing)
    parser.add_argument("--mode", default=MODES[0], choices=list(MODES),
                        help="weight-sharing: evaluate sub-networks of --supernet; standard: fine-tune each trial's sub-network")
    option("supernet", "weight-sharing: checkpoint directory written by train-supernet")
    option("scheduler", "multi-objective scheduler (default: ehvi with --mode weight-sharing, moasha with --mode standard)",
           choices=list(SCHEDULERS))
    option("objectives", f"comma-separated: error plus size objectives ({', '.join(o for o in OBJECTIVES if o != 'error')})")
    option("backend", "pool: N persistent workers that load the super-network once and share its weights; "
           "local: one process per trial (Syne Tune LocalBackend); "
           "sagemaker: one SageMaker training job per trial (see the SageMaker options) "
           "(default: pool with --mode weight-sharing, local with --mode standard)", choices=list(BACKENDS))
    option("n_workers", "trials evaluated in parallel")
    option("reproducible", "the same seed gives the same trials.csv with several workers: trials start in batches of "
           "--n-workers once every worker is free, and results reach the scheduler in trial order (costs the idle "
           "workers; not with moasha unless --n-workers 1)")
    option("max_trials", "stop after this many trials")
    option("max_wallclock_s", "stop after this many seconds", flag="--max-wallclock", metavar="SECONDS")
    option("seed", "random seed of the scheduler (and, with --mode standard, of fine-tuning)")
    option("data_dir", "GLUE files (default: the directory the super-network was trained with)")
    option("fidelity_levels", "MO-ASHA: validation split in this many chunks")
    option("eval_batch_size", "examples per evaluation batch (batches are length-sorted)")
    option("max_eval_examples", "cap on validation and test examples")
    option("test_split", "which sub-networks are scored on the test split (GLUE dev), which the search never uses: "
           "pareto = the Pareto set, after the search (half the evaluation work of every-trial); "
           "every-trial = each trial, in trials.csv (default: pareto; every-trial with --backend sagemaker "
           "and with --mode standard)", choices=list(TEST_SPLITS))
    option("trial_timeout_s", "pool backend: a trial running longer is stopped and failed, its worker restarted (seconds)",
           flag="--trial-timeout", metavar="SECONDS")


def _add_standard_options(group: Any) -> None:
    """The options of standard NAS: ``FineTuneSettings``' fields that the search does not share."""
    option = functools.partial(add_option, group, FineTuneSettings)
    option("model", "pre-trained model: a directory or a known id (e.g. sentence-transformers/all-MiniLM-L6-v2)")
    option("task", "the task every trial fine-tunes on", choices=list(TASKS))
    option("search_space", "space the sub-networks come from", choices=list(SEARCH_SPACES))
    option("epochs", "epochs per trial (MO-ASHA's maximum resource)")
    option("lr")
    option("batch_size")
    option("max_length")
    option("validation_fraction")
    option("max_train_examples")


def cmd_search(args: argparse.Namespace) -> int:
    finetune = None
    if args.mode == "standard":
        if args.supernet:
            raise SynePruneError("--mode standard fine-tunes from --model; drop --supernet (or drop --mode standard)")
        if not (args.model and args.task):
            raise SynePruneError("--mode standard needs --model ID_OR_DIR and --task NAME")
        finetune = FineTuneSettings(**api_kwargs(FineTuneSettings, args))
    else:
        if not args.supernet:
            raise SynePruneError("give --supernet DIR (from train-supernet), or --mode standard --model M --task T")
        extra = [f"--{n.replace('_', '-')}" for n in ("model", "task") if getattr(args, n)]
        if extra:
            raise SynePruneError(f"{', '.join(extra)} belong to --mode standard; a weight-sharing search reads them from --supernet")
    config = SearchConfig(**api_kwargs(SearchConfig, args, objectives=comma_list(args.objectives), finetune=finetune,
                                       sagemaker=_sagemaker_settings(args)))
    summary = run_search(config, resume=args.resume, overwrite=args.overwrite)
    out = Path(args.output)
    print(f"{sum(summary['trials'].values())} trials ({summary['trials']['failed']} failed), {summary['pareto_size']} on the Pareto front, "
          f"hypervolume {summary['hypervolume']:.4f}")
    print(f"Pareto table: {out / 'pareto.csv'}\nplot: {out / 'pareto.png'}\nall trials: {out / TRIALS_FILE}")
    return 0
