"""``syne-prune recover``: fine-tune an exported sub-network with distillation (``syne_prune.recovery.recover``)."""
from __future__ import annotations

import argparse
from typing import Any

from syne_prune.data import TASKS
from syne_prune.embedding import is_embedding_export, recover_embedding
from syne_prune.errors import SynePruneError
from syne_prune.options import add_option, api_kwargs
from syne_prune.recovery import KEEP_POLICIES, epochs_option, recover
from syne_prune.supernet import LAYER_DISTILLATION


def add_commands(commands: Any) -> None:
    """Add ``recover`` to the ``syne-prune`` sub-command parsers; defaults are ``recover``'s keyword defaults."""
    parser = commands.add_parser(
        "recover",
        help="fine-tune an exported sub-network with distillation from its super-network (recovery)",
        description="Fine-tune an export (physically smaller) on its task, on the split the super-network was trained "
        "on, with distillation from a teacher (the super-network, or a fine-tuned model of the same family, vocabulary, "
        "task and labels). Writes a new export in the same format; its syne_prune.json records the validation and test "
        "metric before and after recovery.",
    )
    parser.add_argument("--model", required=True, help="directory written by `syne-prune export` (with a task head)")
    parser.add_argument("--teacher", required=True, help="super-network directory (train-supernet --output) or a fine-tuned model")
    parser.add_argument("--epochs", type=epochs_option, required=True,
                        help="epochs of recovery training, or 'auto': until validation has not improved for --patience epochs "
                        "(at most --max-epochs)")
    parser.add_argument("--output", required=True, help="directory of the new export to create")
    add_option(parser, recover, "lr")
    add_option(parser, recover, "warmup_ratio", "share of the steps over which the learning rate warms up")
    add_option(parser, recover, "batch_size")
    add_option(parser, recover, "temperature", "distillation temperature")
    add_option(parser, recover, "seed", "order of training batches (the split's seed is the recorded one)")
    add_option(parser, recover, "task", "only for an export that records no task (exported from a plain model)", choices=sorted(TASKS))
    add_option(parser, recover, "data_dir", "local GLUE TSV files (default: the directory the super-network was trained with)")
    add_option(parser, recover, "max_length", "tokens per example (default: as in super-network training)")
    add_option(parser, recover, "max_train_examples")
    add_option(parser, recover, "max_eval_examples")
    add_option(parser, recover, "eval_batch_size")
    add_option(parser, recover, "keep", "which weights to write: 'best' = lowest validation error of the export as it came "
               "(epoch 0) and every epoch's end, 'last' = the last epoch's", choices=list(KEEP_POLICIES))
    add_option(parser, recover, "patience", "with --epochs auto: epochs without a better validation error before training stops")
    add_option(parser, recover, "max_epochs", "with --epochs auto: the most epochs trained (the learning rate decays over these)")
    add_option(parser, recover, "layer_distillation", "'hidden': also match each layer's hidden states to the teacher's (MSE, "
               "uniform layer mapping)", choices=list(LAYER_DISTILLATION))
    add_option(parser, recover, "layer_distillation_weight", "weight of the layer-wise term next to the logit distillation")
    add_option(parser, recover, "onnx", "also write model.onnx of the recovered model")
    add_option(parser, recover, "resume")
    add_option(parser, recover, "overwrite")
    parser.set_defaults(run=cmd_recover)


def cmd_recover(args: argparse.Namespace) -> int:
    if is_embedding_export(args.model):
        record = recover_embedding_from_args(args.model, args.teacher, args.epochs, args.output, args)
    else:
        record = recover(args.model, args.teacher, args.epochs, args.output, **api_kwargs(recover, args)).record
    print_recovery(record)
    print(f"recovered export written to {args.output}")
    return 0


def print_recovery(record: dict[str, Any]) -> None:
    """One line: the metric on validation and test before and after recovery (``record`` from syne_prune.json)."""
    metric, recovery = record["metric"], record["recovery"]
    before, after, kept = recovery["before"], recovery["after"], recovery.get("kept_epoch")
    kept = "" if kept is None else f" (kept epoch {kept}{', the export as it came: no epoch improved validation' if kept == 0 else ''})"
    test = ("no test data" if before["test"] is None
            else f"test {metric} {before['test'][metric]:.4f} -> {after['test'][metric]:.4f}")
    stopped = {"patience": f" (--epochs auto: stopped after {recovery['settings'].get('patience')} epoch(s) without a better validation error)",
               "max_epochs": " (--epochs auto: stopped at the most epochs)"}.get(recovery.get("stop_reason"), "")
    print(f"recovered in {len(recovery['history'])} epoch(s) of distillation from {recovery['teacher']}{stopped}: "
          f"validation {metric} {before['validation'][metric]:.4f} -> {after['validation'][metric]:.4f}, {test}{kept}")


def recover_embedding_from_args(model: str, teacher: str, epochs: int | str, output: str, args: argparse.Namespace, record_source: bool = True) -> dict:
    """``syne_prune.embedding.recover_embedding`` with the options of ``recover`` it takes (``--epochs auto``, ``--patience``,
    ``--max-epochs`` and ``--resume`` among them); ``--task``, ``--data-dir``,
    ``--max-length`` and ``--temperature`` describe a labelled task and are refused for an embedding export."""
    for name in ("task", "data_dir", "max_length"):
        if getattr(args, name, None) is not None:
            raise SynePruneError(f"--{name.replace('_', '-')} does not apply to an embedding export (it recovers on its recorded sentences); drop it")
    values = api_kwargs(recover_embedding, args, overwrite=bool(getattr(args, "overwrite", False)), record_source=record_source)
    return recover_embedding(model, teacher, epochs, output, **values)
