"""``syne-prune export``: one sub-network (a configuration, or chosen from a search) as a smaller model, and with
``--recover-epochs`` recovered by distillation (``syne-prune recover``) on the way."""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from syne_prune.artifacts import ExportDir, SearchDir, SupernetDir
from syne_prune.cli.recover import print_recovery
from syne_prune.data import TaskSpec, check_unchanged
from syne_prune.embedding import export_embedding_subnetwork, is_embedding_export, is_embedding_task, recover_embedding
from syne_prune.errors import SynePruneError
from syne_prune.export import export_subnetwork, training_data_record
from syne_prune.files import refuse_existing
from syne_prune.model_card import check_replaceable
from syne_prune.models import get_family, load_model, load_model_config, load_tokenizer
from syne_prune.options import add_option
from syne_prune.recovery import AUTO_EPOCHS, epochs_option, recover
from syne_prune.search import export_from_search
from syne_prune.search_spaces import SEARCH_SPACES, get_search_space


def add_commands(commands: Any) -> None:
    """Add ``export`` to the ``syne-prune`` sub-command parsers."""
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
    export.add_argument("--max-params", type=float,
                        help="with --search-dir: best validation error on the Pareto front with at most this parameter ratio")
    export.add_argument("--output", required=True, help="directory to create")
    export.add_argument("--onnx", action="store_true", help="also write model.onnx (opset 18), checked against PyTorch")
    export.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    export.add_argument("--recover-epochs", type=epochs_option,
                        help="then fine-tune the exported sub-network this many epochs with distillation (see `recover`), or "
                        "'auto': until validation has not improved for --recover-patience epochs (at most --recover-max-epochs); "
                        "--output gets the weights best on validation among the export as it came and every epoch's end "
                        "(recover's --keep best)")
    add_option(export, recover, "patience", "with --recover-epochs auto: epochs without a better validation error before "
               "recovery stops", flag="--recover-patience", dest="recover_patience")
    add_option(export, recover, "max_epochs", "with --recover-epochs auto: the most epochs of recovery", flag="--recover-max-epochs",
               dest="recover_max_epochs")
    export.add_argument("--teacher", help="with --recover-epochs: the teacher (default: the fixed teacher the super-network was "
                        "trained with, else the super-network itself)")
    export.set_defaults(run=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    if args.search_dir is not None:
        if args.model or args.config or args.search_space:
            raise SynePruneError("--search-dir replaces --model/--search-space/--config; give one or the other")
    else:
        if not (args.model and args.search_space and args.config):
            raise SynePruneError("give --model, --search-space and --config (or --search-dir with --trial or --max-params)")
        if args.trial is not None or args.max_params is not None:
            raise SynePruneError("--trial and --max-params choose from a search; they need --search-dir")
    teacher = recovery_teacher(args)
    output = Path(args.output)
    refuse_existing(output, args.overwrite)
    check_replaceable(output)
    if teacher is not None:
        _check_recorded_data(args)  # recovery reads the task's data: a changed file fails before the export is made
    if teacher is None:
        prefix = _export(args, output, args.onnx, args.overwrite)
        _print_export(output, args.onnx, prefix)
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.unrecovered.", dir=output.parent))
    try:  # the unrecovered export lives only in a temporary directory; --output gets the recovered one
        prefix = _export(args, staging, False, True)
        if is_embedding_export(staging):
            record = recover_embedding(staging, teacher, args.recover_epochs, output, patience=args.recover_patience,
                                       max_epochs=args.recover_max_epochs, onnx=args.onnx, overwrite=args.overwrite, record_source=False)
        else:
            record = recover(staging, teacher, args.recover_epochs, output, patience=args.recover_patience,
                             max_epochs=args.recover_max_epochs, onnx=args.onnx, overwrite=args.overwrite, record_source=False).record
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _print_export(output, args.onnx, prefix)
    print_recovery(record)
    return 0


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
        raise SynePruneError(f"--config is not valid JSON ({error.msg} at line {error.lineno}); "
                             "give an object like '{\"num_layers\": 4}'") from None
    if not isinstance(config, dict):
        raise SynePruneError("--config must be a JSON object mapping hyperparameter names to values")
    return config


def recovery_teacher(args: argparse.Namespace) -> str | None:
    """export --recover-epochs: the teacher (--teacher, else the fixed teacher the super-network was trained with,
    else that super-network itself); None without."""
    if args.recover_epochs is None:
        if args.teacher:
            raise SynePruneError("--teacher goes with --recover-epochs N; add it or drop --teacher")
        return None
    if args.recover_epochs != AUTO_EPOCHS and (not isinstance(args.recover_epochs, int) or args.recover_epochs <= 0):
        raise SynePruneError(f"--recover-epochs must be a positive integer or 'auto', got {args.recover_epochs}")
    if args.teacher:
        return args.teacher
    if args.search_dir is not None:
        saved = SearchDir(args.search_dir).read_settings()
        if saved.trial_kind == "standard":
            raise SynePruneError("a standard-NAS search has no super-network to distill from; give --teacher (a model fine-tuned on the task)")
        return _teacher_of_supernet(saved.supernet)
    if not SupernetDir(args.model).is_complete():
        raise SynePruneError(f"--model '{args.model}' is not a super-network (no supernet.json) to distill from; give --teacher")
    return _teacher_of_supernet(args.model)


def _check_recorded_data(args: argparse.Namespace) -> None:
    """The user's data files recorded with the search or super-network exported from are unchanged (one line naming a
    changed file and both sha256, ``syne_prune.data.check_unchanged``); nothing to check for a built-in task."""
    if args.search_dir is not None:
        task = SearchDir(args.search_dir).read_settings().task
    else:
        task = SupernetDir(args.model).read().get("task") if SupernetDir(args.model).is_complete() else None
    if isinstance(task, dict):
        check_unchanged(TaskSpec.from_json(task))


def _teacher_of_supernet(supernet: str) -> str:
    """The fine-tuned teacher a super-network was trained against (``--teacher``), when it is still there; else the
    super-network itself (its largest sub-network is the unpruned model)."""
    teacher = SupernetDir(supernet).teacher_path()
    return teacher if teacher and Path(teacher).is_dir() else supernet


def _export(args: argparse.Namespace, output: Path, onnx: bool, overwrite: bool) -> str:
    """Write the export asked for to ``output``; returns the summary's prefix (the trial, for --search-dir)."""
    if args.search_dir is not None:
        _, row = export_from_search(args.search_dir, output, args.trial, args.max_params, onnx, overwrite)
        return f"trial {int(row['trial_id'])}: validation error {row['error']:.4f}, "
    config = _read_config(args.config)
    model_config = load_model_config(args.model)
    space = get_search_space(args.search_space, get_family(model_config).shape(model_config))
    mask = space.to_mask(config)  # checked before the weights are loaded
    tokenizer = load_tokenizer(args.model, required=True, fix="an export carries its tokenizer: save one next to the model "
                               "(tokenizer.save_pretrained)")
    model = load_model(args.model)
    metadata = {"search_space": space.name, "config": space.validate(config)}
    supernet = SupernetDir(args.model)
    if supernet.is_complete() and is_embedding_task(supernet.read()["task"]):  # with its sentence-transformers files
        export_embedding_subnetwork(model, mask, output, tokenizer, args.model, metadata, onnx=onnx, overwrite=overwrite)
        return ""
    if supernet.is_complete():  # a super-network: record its task and split (for recovery)
        trained = supernet.read()
        metadata |= {**training_data_record({**trained["hyperparameters"], "task": trained["task"]}), "supernet": str(Path(args.model).resolve())}
    export_subnetwork(model, mask, output, tokenizer=tokenizer, onnx=onnx, overwrite=overwrite, metadata=metadata)
    return ""


def _print_export(output: Path, onnx: bool, prefix: str = "") -> None:
    summary = ExportDir(output).read()
    print(
        f"exported to {output}: {prefix}{summary['params']:,} parameters ({summary['params_ratio']:.1%} of the model, "
        f"{summary['encoder_params_ratio']:.1%} of the prunable encoder), {summary['macs_ratio']:.1%} of the MACs"
        + (", with model.onnx" if onnx else "")
    )
