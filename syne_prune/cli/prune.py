"""``syne-prune prune``: the paper's baselines (``syne_prune.baselines.prune``) to parameter or MAC budgets."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from syne_prune.baselines import METHODS, RESULTS_FILE, prune
from syne_prune.cli.task_options import add_task_options, task_from_args
from syne_prune.options import add_option, api_kwargs


def add_commands(commands: Any) -> None:
    """Add ``prune`` to the ``syne-prune`` sub-command parsers; defaults are ``prune``'s keyword defaults."""
    parser = commands.add_parser(
        "prune",
        help="prune a fine-tuned model with a baseline method (rfp, layer-drop, head-prune) to a parameter or MAC budget",
        description="The paper's baselines: " + "; ".join(f"{m.name}: {m.summary}" for m in METHODS.values()) + ". Every budget "
        "gets an export (as `export` writes) in OUTPUT/<ratio>/ and a row of OUTPUT/results.csv (budget, params, encoder params "
        "and MACs ratios, validation and test metric). Budgets are met exactly as counted for the search's params objective. "
        "A budget that gives the previous budget's sub-network reuses its result.",
    )
    # dest "pruning_method": an unknown name reads "unknown pruning method 'x'; choose one of ..."
    parser.add_argument("--method", dest="pruning_method", required=True, choices=list(METHODS), help="pruning method")
    parser.add_argument("--model", required=True, help="directory of a model fine-tuned on --task (e.g. train-supernet --strategy standard)")
    add_task_options(parser, "the built-in task the model was fine-tuned on", "local GLUE TSV files of --task (TASK/train.tsv, "
                     "TASK/dev.tsv); else the Hugging Face hub")
    add_option(parser, prune, "max_params", "budget(s) as ratios of the full model's parameters in (0, 1], e.g. 0.5 or a sweep "
               "0.9,0.8,0.7", metavar="R[,R...]")
    add_option(parser, prune, "max_encoder_params", "budget(s) as ratios of the prunable encoder parameters (the layers' heads "
               "and FFN neurons; embeddings and task head are kept whole)", metavar="R[,R...]")
    add_option(parser, prune, "max_macs", "budget(s) as ratios of the full model's MACs per 128-token sequence "
               "(give one of --max-params, --max-encoder-params, --max-macs)", metavar="R[,R...]")
    add_option(parser, prune, "output", "directory to create: OUTPUT/<ratio>/ exports and OUTPUT/results.csv", required=True)
    add_option(parser, prune, "finetune_epochs", "epochs of label fine-tuning after pruning (shared training loop) (default: "
               + ", ".join(f"{m.name} {m.finetune_epochs}" for m in METHODS.values()) + "; benchmarks/baselines_vs_search.py uses these)")
    add_option(parser, prune, "examples", "training examples for Fisher scores, head importance and RFP mask tuning (as Kwon et al.)")
    add_option(parser, prune, "head_fraction", "head-prune: share of all heads removed per re-scoring step (as Michel et al.)")
    add_option(parser, prune, "lr", "fine-tuning AdamW learning rate, linear decay")
    add_option(parser, prune, "batch_size", "fine-tuning batch size (examples per step)")
    add_option(parser, prune, "seed", "split seed (validation held out of train) and fine-tuning order")
    add_option(parser, prune, "validation_fraction")
    add_option(parser, prune, "max_length")
    add_option(parser, prune, "max_train_examples")
    add_option(parser, prune, "max_eval_examples")
    add_option(parser, prune, "eval_batch_size")
    add_option(parser, prune, "overwrite")
    parser.set_defaults(run=cmd_prune)


def cmd_prune(args: argparse.Namespace) -> int:
    results = prune(args.pruning_method, args.model, task_from_args(args), **api_kwargs(prune, args))
    for result in results:
        row = result.row
        test = "no test data" if row["test_metric"] is None else f"test {row['test_metric']:.4f}"
        print(f"{row['method']} {row['objective']} <= {row['budget']:g}: {row['params_ratio']:.1%} of the parameters "
              f"({row['encoder_params_ratio']:.1%} of the prunable encoder), "
              f"{row['macs_ratio']:.1%} of the MACs; validation {row['metric']} {row['valid_metric']:.4f}, {test} -> {result.path}")
    print(f"results written to {Path(args.output) / RESULTS_FILE}")
    return 0
