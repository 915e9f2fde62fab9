"""``syne-prune train-supernet``: ``syne_prune.supernet.train_supernet`` with a ``TrainingConfig`` (its defaults)."""
from __future__ import annotations

import argparse
import functools
from typing import Any

from syne_prune.cli.task_options import add_task_options, task_from_args
from syne_prune.embedding import EMBEDDING, EMBEDDING_LOSSES, POOLING_MODES, EmbeddingTrainingConfig, train_embedding_supernet
from syne_prune.errors import SynePruneError
from syne_prune.options import add_option, api_kwargs, comma_list
from syne_prune.search_spaces import SEARCH_SPACES
from syne_prune.supernet import IMPORTANCE_CHOICES, LAYER_DISTILLATION, STRATEGIES, TrainingConfig, train_supernet


def add_commands(commands: Any) -> None:
    """Add ``train-supernet`` to the ``syne-prune`` sub-command parsers."""
    parser = commands.add_parser(
        "train-supernet",
        help="fine-tune a model as a super-network whose sub-networks are trained together",
        description="Train a super-network with one of the paper's strategies and write the checkpoint every "
        "search worker reads (safetensors, tokenizer, supernet.json with metrics and a sha256 manifest).",
    )
    option = functools.partial(add_option, parser, TrainingConfig)
    option("model", "directory of a model of a supported family (BERT, RoBERTa, DistilBERT, XLM-R, ELECTRA, DeBERTa-v2/v3, "
                   "ModernBERT), or a hub id when online", required=True)
    add_task_options(parser, "a built-in task (swag: multiple choice; synthetic_sentiment: generated, needs no files)",
                     "local GLUE TSV files of --task (TASK/train.tsv, TASK/dev.tsv) (default: none, the Hugging Face hub)")
    option("search_space", "space sub-networks are sampled from", choices=list(SEARCH_SPACES))
    option("strategy", "how the sub-networks are trained together", choices=list(STRATEGIES))
    option("epochs", "training epochs")
    option("lr")
    option("warmup_ratio", "share of the training steps over which the learning rate rises linearly to --lr (then it "
           "decays linearly to 0)")
    option("batch_size")
    option("max_length")
    option("temperature", "distillation temperature (kd, full)")
    option("num_random_subnets", "random sub-networks per step")
    option("teacher", "fixed fine-tuned teacher every sub-network (the largest too) distils from, next to the labels: "
           "auto = fine-tune the full model first (strategy standard, same data and epochs, each of --teacher-learning-rates, "
           "the best on validation kept) into OUTPUT/teacher and start the super-network from it (with --strategy "
           "standard: none); DIR = a model of the same architecture, vocabulary and task head (e.g. a train-supernet "
           "--strategy standard checkpoint); none: kd and full distil in place from the network being trained",
           metavar="DIR|auto|none")
    option("teacher_learning_rates", "with --teacher auto: the learning rates the teacher is fine-tuned with, one run each "
           "into OUTPUT/teacher/lr-LR; the run with the lowest validation error is the teacher; none: one run with --lr "
           "and --warmup-ratio into OUTPUT/teacher", type=_learning_rates, metavar="LR,LR,...|none")
    option("teacher_warmup_ratio", "with --teacher auto and a grid: share of each teacher fine-tune's steps over which "
           "the learning rate warms up")
    option("layer_distillation", "hidden: every distilled sub-network also matches each kept layer's hidden states to the "
           "fixed teacher's (MSE, uniform layer mapping; needs --teacher auto or DIR)", choices=list(LAYER_DISTILLATION))
    option("layer_distillation_weight", "weight of the layer-wise term next to the logit distillation")
    option("seed", "random seed (validation split, sub-network sampling, shuffling)")
    option("validation_fraction")
    option("max_train_examples")
    option("max_eval_examples")
    option("importance", "before training, order each layer's heads and FFN neurons by importance so that the first k "
           "(what the small/medium/layer spaces keep) are the most important; fisher: squared mask "
           "gradients of the task loss, magnitude: weight norms, none: keep the pre-trained order", choices=IMPORTANCE_CHOICES)
    option("importance_examples", "training examples the importance scores are computed on")
    option("output", "checkpoint directory to create", required=True)
    embedding = functools.partial(add_option, parser.add_argument_group("embedding models (--task-type embedding)"), EmbeddingTrainingConfig)
    embedding("pooling", "how token states become the sentence embedding (normalized to unit length) (default: read from the "
              "model's sentence-transformers files, modules.json and 1_Pooling/config.json)", choices=POOLING_MODES)
    embedding("embedding_loss", "distillation loss of every sub-network's embeddings against the unpruned model's", choices=EMBEDDING_LOSSES)
    parser.add_argument("--resume", action="store_true", help="continue a killed run from its last finished epoch")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    parser.set_defaults(run=cmd_train_supernet)


def _learning_rates(text: str) -> tuple[float, ...] | None:
    """``--teacher-learning-rates``: ``"3e-5,8e-5"`` -> ``(3e-05, 8e-05)``; ``none`` -> None."""
    if text.strip().lower() == "none":
        return None
    try:
        return tuple(float(item) for item in comma_list(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of learning rates (e.g. 3e-5,8e-5) or none: '{text}'") from None


def cmd_train_supernet(args: argparse.Namespace) -> int:
    if args.task_type == EMBEDDING:
        return _train_embedding(args)
    if args.pooling is not None or args.embedding_loss != EmbeddingTrainingConfig.embedding_loss:
        raise SynePruneError("--pooling and --embedding-loss go with --task-type embedding; add it or drop them")
    config = TrainingConfig(**api_kwargs(TrainingConfig, args, task=task_from_args(args)))
    metadata = train_supernet(config, resume=args.resume, overwrite=args.overwrite)
    metric = metadata["metric"]
    for name in ("largest", "smallest"):
        m = metadata["metrics"][name]
        test = "no test data" if m["test"] is None else f"test {metric} {m['test'][metric]:.4f}"
        print(f"{name:8s} sub-network: validation {metric} {m['validation'][metric]:.4f}, {test}")
    if metadata.get("teacher"):
        teacher = metadata["teacher"]
        test = "no test data" if teacher["test"] is None else f"test {metric} {teacher['test'][metric]:.4f}"
        grid = teacher.get("fine_tune")
        chosen = "" if not grid else (f"; fine-tuned at lr {grid['lr']:g}, the best on validation of "
                                      f"{', '.join(f'{lr:g}' for lr in grid['learning_rates'])} ({grid['train_time_s']:.0f} s)")
        print(f"teacher ({teacher['source']}): validation {metric} {teacher['validation'][metric]:.4f}, {test}{chosen}")
    print(f"super-network written to {args.output}")
    return 0


def _train_embedding(args: argparse.Namespace) -> int:
    config = EmbeddingTrainingConfig(**api_kwargs(EmbeddingTrainingConfig, args, task=task_from_args(args)))
    metadata = train_embedding_supernet(config, resume=args.resume, overwrite=args.overwrite)
    metric = metadata["metric"]
    for name in ("largest", "smallest"):
        print(f"{name:8s} sub-network: validation {metric} {metadata['metrics'][name]['validation'][metric]:.4f}")
    print(f"teacher (the unpruned model): validation {metric} {metadata['teacher']['validation'][metric]:.4f}")
    print(f"embedding super-network written to {args.output}")
    return 0
