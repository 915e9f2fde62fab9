"""``prune``: run a baseline pruning method on a fine-tuned model for one budget or a sweep of budgets.

Every budget gets an export in the search's format (``export.export_subnetwork``: safetensors + config that
``from_pretrained`` loads, ``syne_prune.json`` with kept heads/neurons, sizes, task record and a ``baseline``
record) under ``OUTPUT/<ratio>/``, and a row of ``OUTPUT/results.csv`` (rewritten after every budget):
``method, objective, budget, params_ratio, encoder_params_ratio, macs_ratio, valid_error, test_error,
valid_metric, test_metric, metric, prune_time_s, finetune_time_s``. Validation is the held-out part of the
training split and test the GLUE dev split, as in a search (``data.load_task``); metrics come from
``evaluation.evaluate``, the code a search's trials use.
"""
from __future__ import annotations

import csv
import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm
from transformers import PreTrainedModel

from syne_prune.artifacts import COMPUTE_KEY, ExportDir, compute_record
from syne_prune.baselines.common import BUDGET_FLAGS, Budget, PruneContext, Pruned, PruneSettings
from syne_prune.baselines.methods import get_method
from syne_prune.data import EVAL_BATCH_SIZE, Task, TaskLike, encode, evaluation_batches, load_task, resolve_task, task_record, type_of_head
from syne_prune.errors import SynePruneError
from syne_prune.evaluation import default_device, evaluate
from syne_prune.export import export_subnetwork, training_data_record
from syne_prune.files import atomic_write, refuse_existing, writing
from syne_prune.model_card import check_replaceable, write_model_card
from syne_prune.models import auto_class_of, load_model, load_model_config, load_tokenizer
from syne_prune.objectives import subnet_size
from syne_prune.precision import resolve_precision
from syne_prune.surgery import extract_subnetwork
from syne_prune.training import FINETUNE_LR, LoopSettings, TrainingLoop, label_loss_step, seed_everything

RESULTS_FILE = "results.csv"
COLUMNS = ("method", "objective", "budget", "params_ratio", "encoder_params_ratio", "macs_ratio", "valid_error", "test_error",
           "valid_metric", "test_metric", "metric", "prune_time_s", "finetune_time_s")


@dataclass
class BudgetResult:
    """One budget of a run: its CSV ``row``, the pruned (and fine-tuned) ``model`` in memory (CPU, eval mode), the
    method's ``pruned`` result (mask, details) and the export's ``path``. Pruning, tuning and evaluation run on the GPU
    when there is one."""

    row: dict[str, Any]
    model: PreTrainedModel
    pruned: Pruned
    path: Path


def parse_budgets(max_params: Any = None, max_macs: Any = None, max_encoder_params: Any = None) -> list[Budget]:
    """Budgets from exactly one of ``max_params``, ``max_encoder_params`` and ``max_macs``: a ratio, a sequence of
    ratios or a comma list ("0.9,0.5"), largest first. Raises SynePruneError for none or several kinds, a
    non-number, a ratio outside (0, 1] or a repeated ratio."""
    given = {kind: value for kind, value in (("params", max_params), ("encoder_params", max_encoder_params), ("macs", max_macs))
             if value is not None}
    if len(given) != 1:
        raise SynePruneError(f"give exactly one of {', '.join(BUDGET_FLAGS.values())} (a ratio of the full model, or a comma list)")
    [(kind, value)] = given.items()
    items = value.split(",") if isinstance(value, str) else list(value) if isinstance(value, Sequence) else [value]
    budgets = []
    for item in items:
        try:
            ratio = float(item)
        except (TypeError, ValueError):
            raise SynePruneError(f"{BUDGET_FLAGS[kind]} wants ratios like 0.5 or 0.9,0.7,0.5; got '{item}'") from None
        budgets.append(Budget(kind, ratio))
    if not budgets or len({b.label for b in budgets}) != len(budgets):
        raise SynePruneError(f"{BUDGET_FLAGS[kind]} lists a ratio twice (or none); give distinct ratios")
    return sorted(budgets, key=lambda b: -b.ratio)


def check_task_model(model_dir: str, task: Task):
    """The config of ``model_dir``; a one-line error unless it is a supported architecture with ``task``'s head."""
    config = load_model_config(model_dir)
    auto = auto_class_of(config).__name__
    want, labels = task.type.auto_class, task.type.head_labels(task.num_labels)
    if type_of_head(auto, config) is not task.type or (labels and config.num_labels != labels):
        has = "no task head" if auto == "AutoModel" else f"a {auto} head with {config.num_labels} label(s)"
        raise SynePruneError(f"--model '{model_dir}' is not a model fine-tuned on '{task.name}' ({has}; the task needs {want} with "
                             f"{labels}); fine-tune it first, e.g. syne-prune train-supernet --strategy standard")
    return config


def smallest_ratio(method: str, model_dir: str, kind: str = "params", seq_len: int = 128) -> float:
    """The smallest ``kind`` ratio (a ``BUDGET_KINDS`` name) ``method`` reaches on the model ``model_dir`` (no data needed):
    budgets below it are refused by ``prune``. Raises SynePruneError for an unknown method or kind, or a model
    that does not load."""

    Budget(kind, 1.0)  # checks the kind
    spec, model = get_method(method), load_model(model_dir)
    ctx = PruneContext(model, None, None, [], PruneSettings(seq_len=seq_len))  # sizes only: no task, tokenizer or data
    return getattr(subnet_size(model, spec.smallest(ctx), seq_len), kind) / getattr(subnet_size(model, seq_len=seq_len), kind)


def fine_tune(model: PreTrainedModel, ctx: PruneContext, epochs: int, label: str) -> tuple[PreTrainedModel, float]:
    """``epochs`` of plain label fine-tuning of ``model`` in the shared training loop; returns it (CPU, eval) and seconds."""
    started = time.perf_counter()
    s = ctx.settings
    model.train().requires_grad_(True)
    loop = TrainingLoop(model, ctx.train, ctx.tokenizer, label_loss_step,
                        LoopSettings(epochs, s.lr, s.batch_size, s.seed, description=f"fine-tune {label}", progress=s.progress))
    loop.run()
    return model.cpu().eval(), time.perf_counter() - started


def prune(method: str, model_dir: str, task: TaskLike, *, max_params: Any = None, max_encoder_params: Any = None, max_macs: Any = None,
          output: str | Path,
          data_dir: str | None = None, finetune_epochs: int | None = None, examples: int = 2048, lr: float = FINETUNE_LR,
          batch_size: int = 32, seed: int = 0, validation_fraction: float = 0.3, max_length: int = 128,
          max_train_examples: int | None = None, max_eval_examples: int | None = None, eval_batch_size: int = EVAL_BATCH_SIZE,
          head_fraction: float = 0.1, overwrite: bool = False, progress: bool = True) -> list[BudgetResult]:
    """Prune the fine-tuned ``model_dir`` (a model of any supported family with ``task``'s head) with ``method`` (a name
    in ``baselines.METHODS``) to every budget of ``max_params``, ``max_encoder_params`` or ``max_macs`` (ratios of the
    full model's parameters, prunable encoder parameters or MACs per sequence; one ratio or a comma list); writes ``output/<ratio>/`` exports and
    ``output/results.csv``; returns one ``BudgetResult`` per budget, largest budget first.

    A budget whose sub-network is the previous (larger) budget's and whose method does not change weights reuses
    that result (the row again, with its own budget; no second fine-tuning: layer dropping has few distinct sizes).

    Raises SynePruneError before ``output`` is touched for: an unknown method or task, none or several budget kinds,
    a ratio outside (0, 1], a budget below the smallest sub-network the method reaches (the message names that
    ratio), a model that is not fine-tuned on ``task`` or not a supported architecture, a model without
    tokenizer, a non-positive setting, an existing ``output`` without ``overwrite``, or an ``output`` holding a README.md
    that syne-prune did not write (``model_card.check_replaceable``)."""

    spec = get_method(method)
    budgets = parse_budgets(max_params, max_macs, max_encoder_params)
    for name, value in (("examples", examples), ("batch_size", batch_size), ("max_length", max_length), ("eval_batch_size", eval_batch_size),
                        ("max_train_examples", max_train_examples), ("max_eval_examples", max_eval_examples)):
        if value is not None and (not isinstance(value, int) or value <= 0):
            raise SynePruneError(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
    if finetune_epochs is not None and finetune_epochs < 0:
        raise SynePruneError(f"--finetune-epochs must be 0 or more, got {finetune_epochs}")
    if not 0 < head_fraction <= 1 or not lr > 0:
        raise SynePruneError(f"--head-fraction must be in (0, 1] and --lr positive, got {head_fraction} and {lr}")
    output = Path(output)
    refuse_existing(output, overwrite)
    check_replaceable(output)
    task_ = resolve_task(task, load_model_config(model_dir) if Path(model_dir, "config.json").is_file() else None)
    check_task_model(model_dir, task_)
    tokenizer = load_tokenizer(model_dir, required=True, what=f"--model '{model_dir}'", fix="save the tokenizer with the fine-tuned model")
    data = load_task(task_, data_dir, validation_fraction, seed, max_train_examples, max_eval_examples)
    epochs = spec.finetune_epochs if finetune_epochs is None else finetune_epochs
    settings = PruneSettings(examples, epochs, lr, batch_size, seed, eval_batch_size, head_fraction, progress=progress)
    ctx = PruneContext(load_model(model_dir).to(default_device()), task_, tokenizer, encode(data.train, tokenizer, max_length, task_.type), settings)
    smallest = spec.smallest(ctx)
    for budget in budgets:
        if not ctx.fits(smallest, budget):
            floor = ctx.ratio(smallest, budget.kind)
            raise SynePruneError(f"{method} cannot go below {floor:.4f} of the {budget.kind.replace('_', ' ')} (its smallest sub-network); give {budget.flag} "
                                 f">= {floor:.4f} or use another method")
    validation, test = (evaluation_batches(split, tokenizer, max_length, task_.type, eval_batch_size)
                        for split in (data.validation, data.test))
    with writing(output):  # a read-only or full file system, a path through a file: one line, before any fine-tuning
        if output.exists():
            shutil.rmtree(output) if output.is_dir() else output.unlink()
        output.mkdir(parents=True)
    record = training_data_record({"task": task_record(task_),
                                   "data_dir": data_dir, "validation_fraction": validation_fraction, "seed": seed, "max_length": max_length})
    results: list[BudgetResult] = []
    for budget in tqdm(budgets, desc=f"{method} budgets", disable=not progress):
        previous = results[-1] if results else None
        results.append(_one_budget(spec, ctx, budget, validation, test, output, tokenizer, record, epochs, previous))
        _write_csv(output / RESULTS_FILE, [r.row for r in results])
    return results


def _one_budget(spec, ctx: PruneContext, budget: Budget, validation, test, output: Path, tokenizer, record: dict, epochs: int,
                previous: BudgetResult | None) -> BudgetResult:
    seed_everything(ctx.settings.seed)
    started = time.perf_counter()
    pruned = spec.run(ctx, budget)
    if not ctx.fits(pruned.mask, budget):
        raise SynePruneError(f"{spec.name} returned a sub-network above the budget {budget.ratio}; report this as a bug")
    if previous is not None and pruned.subnetwork is None and previous.pruned.subnetwork is None and pruned.mask == previous.pruned.mask:
        return _same_as(previous, budget, output, time.perf_counter() - started)
    sub = pruned.subnetwork if pruned.subnetwork is not None else extract_subnetwork(ctx.model, pruned.mask, share_weights=False).eval()
    prune_s = time.perf_counter() - started
    finetune_s = 0.0
    if epochs > 0:
        sub, finetune_s = fine_tune(sub, ctx, epochs, f"{spec.name} {budget.label}")
    sub = sub.to(next(ctx.model.parameters()).device)  # the GPU when there is one
    scores = {"validation": evaluate(sub, validation, ctx.task), "test": evaluate(sub, test, ctx.task)}
    size, metric = ctx.size(pruned.mask), ctx.task.metric_name
    row = {"method": spec.name, "objective": budget.kind, "budget": budget.ratio, "params_ratio": size.params / ctx.full.params,
           "encoder_params_ratio": size.encoder_params / ctx.full.encoder_params, "macs_ratio": size.macs / ctx.full.macs,
           "valid_error": scores["validation"]["error"], "test_error": (scores["test"] or {}).get("error"),
           "valid_metric": scores["validation"][metric], "test_metric": (scores["test"] or {}).get(metric), "metric": metric,
           "prune_time_s": prune_s, "finetune_time_s": finetune_s}
    metadata = {**record, "metric": metric, "baseline": {
        "method": spec.name, "budget": {"kind": budget.kind, "ratio": budget.ratio}, "finetune_epochs": epochs,
        "settings": {k: v for k, v in vars(ctx.settings).items() if k != "progress"}, "details": pruned.info,
        "validation": scores["validation"], "test": scores["test"], "prune_time_s": prune_s, "finetune_time_s": finetune_s,
        COMPUTE_KEY: compute_record(resolve_precision(None, default_device()), default_device().type)}}
    path = export_subnetwork(ctx.model, pruned.mask, output / budget.label, tokenizer=tokenizer, metadata=json.loads(json.dumps(metadata)),
                             subnetwork=sub)
    return BudgetResult(row, sub.cpu(), pruned, path)


def _same_as(previous: BudgetResult, budget: Budget, output: Path, prune_s: float) -> BudgetResult:
    """``previous``'s result again for ``budget`` (the same sub-network): its export copied, its budget recorded."""
    path = output / budget.label
    with writing(path, cleanup=[path]):  # a failed copy leaves no half export
        shutil.copytree(previous.path, path)
        metadata = ExportDir(path).read()
        metadata["baseline"].update(budget={"kind": budget.kind, "ratio": budget.ratio}, prune_time_s=prune_s, finetune_time_s=0.0,
                                    same_as_budget=previous.row["budget"])
        ExportDir(path).write(metadata)
        write_model_card(path)
    row = {**previous.row, "budget": budget.ratio, "prune_time_s": prune_s, "finetune_time_s": 0.0}
    return BudgetResult(row, previous.model, previous.pruned, path)


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)

    atomic_write(path, write)
