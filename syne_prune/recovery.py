"""Recovery: fine-tune an exported (physically smaller) sub-network with distillation from a teacher.

Pruning costs accuracy; a few epochs of fine-tuning the exported sub-network on its task win part of it
back. The loss is the super-network training's ``distillation_loss`` (``supernet/strategies.py``):
the student's logits against the teacher's (softened by ``temperature``) plus the label term, as in
knowledge distillation (Hinton et al. 2015) and the in-place distillation of Klein et al. 2024
(arXiv 2405.02267). The teacher is the super-network the export comes from, or another fine-tuned model
of the same family, vocabulary, task and label count; it is not updated.

Training runs in the one training loop (``training.py``) on the same train / validation / test split as
super-network training (``load_task`` with the seed and validation fraction the export records), with
its resume state in ``OUTPUT/.resume``. The result is a new export in the same format
(``export.save_export``) whose ``syne_prune.json`` keeps the original record and adds ``recovery``:
teacher, settings, history, and the validation and test metric ``before`` and ``after``.

Which weights are written (``keep``): ``best`` (default) keeps those with the lowest validation error among the
export as it came (epoch 0) and the end of every epoch, as early stopping on a held-out split does; ``last`` keeps
the last epoch's. Measured on MRPC (BENCHMARKS.md, recovery of the 100-trial choices): one epoch of recovery lifted
every choice at <= 33% of the prunable parameters but lowered the validation and test F1 of the best choices on two
of three seeds, so recovery that may only train can lose what the search found. ``after`` scores the written weights;
``kept_epoch`` says which they are and ``last`` scores the last epoch's.

How long it trains (``epochs``): a number of epochs, or ``auto``: epochs until the validation error has not improved
(strictly) for ``patience`` epochs in a row, at most ``max_epochs`` (the learning rate's linear decay spans
``max_epochs``), as early stopping does. ``epochs_run`` records how many ran and ``stop_reason`` why training ended:
``epochs`` (the number asked for), ``patience`` or ``max_epochs``.

``layer_distillation="hidden"`` adds the layer-wise term of ``supernet.LayerDistillation`` (each of the export's
layers' hidden states matched to the teacher's, uniform layer mapping) with weight ``layer_distillation_weight``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, PretrainedConfig, PreTrainedModel

from syne_prune.artifacts import COMPUTE_KEY, EXPORT_FILE, SUPERNET_FILE, ExportDir, compute_record, read_json
from syne_prune.data import EVAL_BATCH_SIZE, Task, TaskType, encode, evaluation_batches, get_task, get_task_type, load_task, same_task, task_name, task_record
from syne_prune.errors import SynePruneError
from syne_prune.evaluation import evaluate
from syne_prune.export import save_export
from syne_prune.files import atomic_write
from syne_prune.model_card import check_replaceable
from syne_prune.models import FAMILIES, Family, auto_class_of, check_model_files, check_model_settings, load_tokenizer
from syne_prune.precision import backward
from syne_prune.supernet import LAYER_DISTILLATION, LayerDistillation, distillation_loss
from syne_prune.training import RESUME_DIR, LoopSettings, TrainingLoop, prepare_output, seed_everything, write_settings
from syne_prune.versions import software_versions

KEEP_POLICIES = ("best", "last")  # which weights recovery writes; see the module docstring
AUTO_EPOCHS = "auto"  # epochs="auto": train until validation stops improving (see the module docstring)
DEFAULT_DATA = {"data_dir": None, "validation_fraction": 0.3, "seed": 0, "max_length": 128}  # train-supernet's defaults


@dataclass(frozen=True)
class RecoverySettings:
    """How recovery trains. ``epochs``: a positive number or ``"auto"`` (``patience``, ``max_epochs``; module
    docstring); ``seed``: order of the training batches (the split's seed is the recorded one);
    ``task``, ``data_dir``, ``max_length``: None = as the export records."""

    epochs: int | str
    lr: float = 5e-5  # as in benchmarks/quality.py's recovery row (BENCHMARKS.md, quality)
    batch_size: int = 32
    temperature: float = 1.0
    warmup_ratio: float = 0.0
    seed: int = 0
    task: str | None = None
    data_dir: str | None = None
    max_length: int | None = None
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    eval_batch_size: int = EVAL_BATCH_SIZE
    keep: str = "best"
    patience: int = 2  # with epochs="auto": epochs without a better validation error before training stops
    max_epochs: int = 10  # with epochs="auto": the most epochs it trains
    layer_distillation: str = "none"  # "hidden": also match each layer's hidden states to the teacher's
    layer_distillation_weight: float = 1.0

    @property
    def epochs_to_train(self) -> int:
        """The epochs the training loop is set up for: ``epochs``, or ``max_epochs`` with ``auto``."""
        return self.max_epochs if self.epochs == AUTO_EPOCHS else self.epochs

    def check(self) -> None:
        """Every foreseeable mistake as a one-line SynePruneError."""
        if self.epochs != AUTO_EPOCHS and (not isinstance(self.epochs, int) or isinstance(self.epochs, bool) or self.epochs <= 0):
            raise SynePruneError(f"--epochs must be a positive integer or 'auto', got {self.epochs}")
        for name in ("patience", "max_epochs", "batch_size", "eval_batch_size", "max_length", "max_train_examples", "max_eval_examples"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
                raise SynePruneError(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
        for name in ("lr", "temperature"):
            if not getattr(self, name) > 0:
                raise SynePruneError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if not 0 <= self.warmup_ratio < 1:
            raise SynePruneError(f"--warmup-ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.task is not None:
            get_task(self.task)
        if self.keep not in KEEP_POLICIES:
            raise SynePruneError(f"--keep must be one of {', '.join(KEEP_POLICIES)}, got '{self.keep}'")
        if self.layer_distillation not in LAYER_DISTILLATION:
            raise SynePruneError(f"--layer-distillation must be one of {', '.join(LAYER_DISTILLATION)}, got '{self.layer_distillation}'")
        if not self.layer_distillation_weight >= 0:
            raise SynePruneError(f"--layer-distillation-weight must be >= 0, got {self.layer_distillation_weight}")

    def stop_reason(self, errors: list[float]) -> str | None:
        """Why training stops after the epochs whose validation errors are ``errors`` (index 0: the export as it
        came, then one per epoch), or None to train on: ``epochs``, ``patience`` or ``max_epochs``."""
        done = len(errors) - 1
        if self.epochs != AUTO_EPOCHS:
            return "epochs" if done >= self.epochs else None
        best = 0
        for epoch, error in enumerate(errors):
            if error < errors[best]:  # strictly lower, as BestOnValidation keeps
                best = epoch
        if done - best >= self.patience:
            return "patience"
        return "max_epochs" if done >= self.max_epochs else None


@dataclass
class Recovery:
    """What ``recover`` returns: the recovered model (in memory, on the CPU, eval mode), its ``syne_prune.json``
    record and the directory written."""

    model: PreTrainedModel
    record: dict[str, Any]
    path: Path


class BestOnValidation:
    """The weights with the lowest validation error seen so far (``keep="best"``), kept in ``directory`` as
    ``kept-<epoch>.pt`` (one file; epoch 0 = the weights recovery started from) so that a resumed recovery finds them.

    ``offer(model, epoch, validation)`` keeps the model's weights when ``validation["error"]`` is strictly lower than
    the best so far (ties keep the earlier, less trained weights); ``state()`` / ``restore(state)``: the epoch and error
    kept, for the resume state; ``load_into(model)`` puts the kept weights back."""

    def __init__(self, directory: Path) -> None:
        self.directory, self.epoch, self.error = directory, None, float("inf")

    def offer(self, model: torch.nn.Module, epoch: int, validation: dict[str, float]) -> None:
        if not validation["error"] < self.error:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"kept-{epoch}.pt"
        atomic_write(path, lambda tmp: torch.save({name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}, tmp))
        self.epoch, self.error = epoch, validation["error"]

    def state(self) -> dict[str, Any]:
        return {"kept_epoch": self.epoch, "kept_error": self.error}

    def restore(self, state: dict[str, Any]) -> None:
        self.epoch, self.error = state["kept_epoch"], state["kept_error"]

    def forget_others(self) -> None:
        """Remove the files of weights no longer kept (after the resume state names ``self.epoch``)."""
        for path in self.directory.glob("kept-*.pt"):
            if path.name != f"kept-{self.epoch}.pt":
                path.unlink()

    def load_into(self, model: torch.nn.Module) -> None:
        state = torch.load(self.directory / f"kept-{self.epoch}.pt", map_location="cpu", weights_only=True)
        model.load_state_dict(state)


class DistillationStep:
    """One recovery step, ``(student, batch, step) -> loss``: the teacher's logits (no gradient), then
    ``distillation_loss`` of the task type (``syne_prune.data.TaskType``, or its name; a bool: whether it is a
    regression; the type documents the logits' shapes), plus, with ``layer_distillation``, its layer-wise hidden-state
    term, and its backward pass."""

    def __init__(self, teacher: PreTrainedModel, temperature: float, task_type: TaskType | str | bool,
                 layer_distillation: LayerDistillation | None = None) -> None:
        self.teacher, self.temperature, self.task_type = teacher.eval(), temperature, get_task_type(task_type)
        self.layer_distillation = layer_distillation

    def __call__(self, model: PreTrainedModel, batch: dict[str, torch.Tensor], step: int) -> torch.Tensor:
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        if self.layer_distillation is not None:
            teacher_logits = self.layer_distillation(inputs)
        else:
            with torch.no_grad():
                teacher_logits = self.teacher(**inputs).logits
        output = model(**inputs, output_hidden_states=self.layer_distillation is not None)
        loss = distillation_loss(output.logits, teacher_logits, batch["labels"], self.temperature, task_type=self.task_type)
        if self.layer_distillation is not None:
            loss = loss + self.layer_distillation.loss(output.hidden_states, None, batch)
        backward(loss)
        return loss.detach()


def recover(model_dir: str | Path, teacher_dir: str | Path, epochs: int | str, output: str | Path, *, lr: float = RecoverySettings.lr,
            batch_size: int = 32, temperature: float = 1.0, warmup_ratio: float = 0.0, seed: int = 0, task: str | None = None,
            data_dir: str | None = None, max_length: int | None = None, max_train_examples: int | None = None,
            max_eval_examples: int | None = None, eval_batch_size: int = EVAL_BATCH_SIZE, keep: str = "best",
            patience: int = RecoverySettings.patience, max_epochs: int = RecoverySettings.max_epochs,
            layer_distillation: str = "none", layer_distillation_weight: float = RecoverySettings.layer_distillation_weight,
            onnx: bool = False, resume: bool = False, overwrite: bool = False, progress: bool = True, record_source: bool = True) -> Recovery:
    """Fine-tune the export ``model_dir`` for ``epochs`` epochs (a number, or ``"auto"``: until the validation error
    has not improved for ``patience`` epochs, at most ``max_epochs``) with distillation from ``teacher_dir`` and write
    the result as a new export to ``output``; returns the recovered model, its ``syne_prune.json`` record and ``output``.
    ``keep``: ``best`` writes the weights with the lowest validation error of epoch 0 (the export as it came) and
    every epoch trained, ``last`` the last epoch's (module docstring). ``layer_distillation="hidden"`` adds the
    layer-wise term with ``layer_distillation_weight``.

    Raises SynePruneError (before ``output`` is touched) when ``model_dir`` is not a syne-prune export, the teacher
    is of another family, vocabulary, task or label count, a setting is out of range, ``output`` exists without
    ``overwrite``/``resume``, ``output`` is the export or the teacher itself, or ``output`` holds a README.md that
    syne-prune did not write (``model_card.check_replaceable``: the recovered export would replace it).
    ``record_source=False``: record no ``source_export`` path (``export --recover-epochs`` recovers a temporary export).
    """
    settings = RecoverySettings(epochs, lr, batch_size, temperature, warmup_ratio, seed, task, data_dir, max_length,
                                max_train_examples, max_eval_examples, eval_batch_size, keep, patience, max_epochs,
                                layer_distillation, layer_distillation_weight)
    settings.check()
    model_dir, teacher_dir, output = Path(model_dir), Path(teacher_dir), Path(output)
    if overwrite or resume:
        check_replaceable(output, "--overwrite" if overwrite else "--resume")
    record, student_config = read_export(model_dir)
    task_, data = _task_and_split(record, settings, student_config)
    _check_teacher(teacher_dir, student_config, task_)
    for other, flag in ((model_dir, "--model"), (teacher_dir, "--teacher")):
        if output.resolve() == other.resolve():
            raise SynePruneError(f"--output is the {flag} directory; recovery writes a new export, choose another --output")
    tokenizer = load_tokenizer(str(model_dir), required=True, what=f"export '{model_dir}'",
                               fix="export it again with its tokenizer (from a super-network or search)")
    check_model_settings(student_config, task_, tokenizer, data["max_length"], model_name=f"export '{model_dir}'", require_head=True)
    check_model_files(model_dir, f"export '{model_dir}'", "use a checkpoint with finite weights")
    check_model_files(teacher_dir, f"teacher '{teacher_dir}'", "use a checkpoint with finite weights")
    split = load_task(task_, data["data_dir"], data["validation_fraction"], data["seed"], max_train_examples, max_eval_examples)
    resume_settings = {"model": str(model_dir.resolve()), "teacher": str(teacher_dir.resolve()), **asdict(settings), "data": data}
    prepare_output(output, resume_settings, resume, overwrite, EXPORT_FILE)
    if resume and ExportDir(output).is_export() and not (output / RESUME_DIR).exists():  # already finished
        return Recovery(auto_class_of(AutoConfig.from_pretrained(output)).from_pretrained(output).eval(),
                        ExportDir(output).read(), output)
    student, results = _train(settings, (model_dir, teacher_dir, output), student_config, tokenizer, task_, split, data, resume,
                              resume_settings, progress)
    recovery = {"source_export": str(model_dir.resolve()) if record_source else None, "teacher": str(teacher_dir.resolve()),
                "settings": asdict(settings), **{f"num_{name}_examples": len(getattr(split, name) or ()) for name in ("train", "validation", "test")},
                **results}
    new_record = {**record, "task": task_record(task_), "data": data, "metric": task_.metric_name, "recovery": recovery, "versions": software_versions()}
    save_export(student.cpu(), output, new_record, tokenizer=tokenizer, onnx=onnx, overwrite=True)  # replaces .resume too
    return Recovery(student.eval(), new_record, output)


def _train(settings: RecoverySettings, paths: tuple[Path, Path, Path], student_config: PretrainedConfig, tokenizer: Any, task: Task,
           split: Any, data: dict[str, Any], resume: bool, resume_settings: dict[str, Any], progress: bool) -> tuple[PreTrainedModel, dict[str, Any]]:
    """Train the export (``paths``: export, teacher, output) until ``settings.stop_reason`` says so, keeping the resume
    state and the best weights in ``output/.resume``; returns the student (the weights to write) and the record's
    results: ``history``, ``train_time_s``, ``epochs_run``, ``stop_reason``, ``before``, ``after``, ``kept_epoch``, ``last``."""
    model_dir, teacher_dir, output = paths
    seed_everything(settings.seed)
    # float32 whatever the checkpoints were saved in (see load_task_model): float16 training diverges to NaN
    student = auto_class_of(student_config).from_pretrained(model_dir, dtype=torch.float32)
    teacher = auto_class_of(AutoConfig.from_pretrained(teacher_dir)).from_pretrained(teacher_dir, dtype=torch.float32).requires_grad_(False)
    layer = None if settings.layer_distillation == "none" else LayerDistillation(teacher, settings.layer_distillation_weight)
    train = encode(split.train, tokenizer, data["max_length"], task.type)
    validation, test = (evaluation_batches(part, tokenizer, data["max_length"], task.type, settings.eval_batch_size)
                        for part in (split.validation, split.test))
    loop = TrainingLoop(student, train, tokenizer, DistillationStep(teacher, settings.temperature, task.type, layer),
                        LoopSettings(settings.epochs_to_train, settings.lr, settings.batch_size, settings.seed, settings.warmup_ratio,
                                     description="recovery", progress=progress))
    teacher.to(loop.device)
    before = {"validation": evaluate(student, validation, task), "test": evaluate(student, test, task)}  # validation first
    results = train_recovery(loop, student, settings, output, before, lambda: evaluate(student, validation, task),
                             lambda: evaluate(student, test, task), resume, resume_settings)
    return student, results


def train_recovery(loop: TrainingLoop, model: torch.nn.Module, settings: RecoverySettings, output: Path, before: dict[str, Any],
                   validate: Callable[[], dict[str, float]], test: Callable[[], dict[str, float] | None], resume: bool,
                   resume_settings: dict[str, Any]) -> dict[str, Any]:
    """The training of every recovery (task and embedding exports): run ``loop`` until ``settings.stop_reason`` says so
    (with ``resume``, first restore its state from ``output/.resume``), scoring ``validate()`` (``{metric: value,
    "error": e}`` of ``model`` as it is) after every epoch and keeping there the resume state, ``resume_settings``
    (what a resume must match) and, with ``keep="best"``, the best weights of ``model`` (``BestOnValidation``).
    ``before``: ``{"validation", "test"}`` scores of the weights it starts from; ``test()``: the test scores of
    ``model`` as it is (None without test data). Leaves the weights to write in ``model``; returns the record's results:
    ``history``, ``train_time_s``, ``epochs_run``, ``stop_reason``, ``before``, ``after``, ``kept_epoch``, ``last`` and
    the compute record."""
    state_path = output / RESUME_DIR / "state.pt"
    best = BestOnValidation(output / RESUME_DIR)
    if resume and loop.resume(state_path):
        best.restore(loop.extra)
    elif settings.keep == "best":
        best.offer(model, 0, before["validation"])

    def validation_errors() -> list[float]:
        return [before["validation"]["error"]] + [epoch_record["validation"]["error"] for epoch_record in loop.history]

    def evaluate_and_save(epoch_record: dict[str, Any]) -> bool:
        epoch_record["validation"] = validate()
        if settings.keep == "best":
            best.offer(model, loop.epochs_done, epoch_record["validation"])
        write_settings(output, resume_settings)
        loop.save(state_path, **best.state())
        best.forget_others()
        return settings.stop_reason(validation_errors()) is not None

    if settings.stop_reason(validation_errors()) is None:  # a resumed run may have stopped already
        loop.run(evaluate_and_save)
    validated = [before["validation"]] + [epoch_record["validation"] for epoch_record in loop.history]  # per epoch, 0 = before
    last = after = {"validation": validated[-1], "test": test()}
    kept_epoch = best.epoch if settings.keep == "best" else loop.epochs_done
    if kept_epoch != loop.epochs_done:
        best.load_into(model)
        after = {"validation": validated[kept_epoch], "test": test()}
    return {"history": loop.history, "train_time_s": sum(h["epoch_time_s"] for h in loop.history),
            "epochs_run": loop.epochs_done, "stop_reason": settings.stop_reason(validation_errors()),
            "before": before, "after": after, "kept_epoch": kept_epoch, "last": last,
            COMPUTE_KEY: compute_record(loop.precision, loop.device.type)}


def epochs_option(text: str) -> int | str:
    """``--epochs`` / ``--recover-epochs`` as given on the command line: ``"auto"`` stays, an integer becomes one;
    anything else is passed on as it is, for ``RecoverySettings.check`` to name."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        return text


def read_export(model_dir: Path) -> tuple[dict[str, Any], PretrainedConfig]:
    """The ``syne_prune.json`` record and the model config of a syne-prune export with a task head."""
    record = ExportDir(model_dir).read()
    try:
        config = AutoConfig.from_pretrained(model_dir)
    except (ValueError, OSError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise SynePruneError(f"export '{model_dir}' is damaged ({reason}); export it again") from None
    _family(config, f"export '{model_dir}'")
    if auto_class_of(config).__name__ == "AutoModel":
        raise SynePruneError(f"export '{model_dir}' has no task head (a base model); recovery needs an export of a classification "
                             "or multiple-choice model")
    return record, config


def _family(config: PretrainedConfig, what: str) -> Family:
    """The architecture of a stock or pruned config (a uniform export has a stock config)."""
    model_type = getattr(config, "model_type", None)
    for arch in FAMILIES.values():
        if model_type in (arch.model_type, arch.pruned_model_type):
            return arch
    raise SynePruneError(f"{what} is a '{model_type}' model, not a (pruned) {'/'.join(FAMILIES)} model; give a syne-prune export")


def _task_and_split(record: dict[str, Any], settings: RecoverySettings, config: PretrainedConfig) -> tuple[Task, dict[str, Any]]:
    """The export's task and the split it was trained on (recorded values, then ``settings``' overrides)."""
    recorded = record.get("task")
    if recorded is None and settings.task is None:
        raise SynePruneError("the export records no task (exported from a model without supernet.json); pass --task NAME")
    if recorded is not None and settings.task is not None and not same_task(settings.task, recorded):
        raise SynePruneError(f"--task {settings.task} differs from the export's task '{task_name(recorded)}'; drop --task")
    task = get_task(settings.task or recorded)
    data = {**DEFAULT_DATA, **(record.get("data") or {})}
    for name in ("data_dir", "max_length"):
        if getattr(settings, name) is not None:
            data[name] = getattr(settings, name)
    labels = _num_labels(config)
    if labels != (task.type.head_labels(task.num_labels) or 1):
        raise SynePruneError(f"the export has {labels} output(s) but task '{task.name}' needs {task.num_labels}; pass the export's task")
    return task, data


def _num_labels(config: PretrainedConfig) -> int:
    return 1 if auto_class_of(config).__name__ == "AutoModelForMultipleChoice" else config.num_labels


def _check_teacher(teacher_dir: Path, student: PretrainedConfig, task: Task) -> None:
    """The teacher must be of the student's family, vocabulary, head, label count and task."""
    try:
        config = AutoConfig.from_pretrained(teacher_dir)
    except (ValueError, OSError):
        raise SynePruneError(f"teacher '{teacher_dir}' is not a model directory; give the super-network (train-supernet --output) "
                             "or a fine-tuned model of the export's task") from None
    family, want = _family(config, f"teacher '{teacher_dir}'").name, _family(student, "the export").name
    if family != want:
        raise SynePruneError(f"teacher '{teacher_dir}' is a {family} model, the export a {want} one; give a {want} teacher")
    if config.vocab_size != student.vocab_size:
        raise SynePruneError(f"teacher '{teacher_dir}' has a vocabulary of {config.vocab_size} tokens, the export {student.vocab_size}; "
                             "give a teacher with the export's tokenizer")
    if auto_class_of(config) is not auto_class_of(student) or _num_labels(config) != _num_labels(student):
        raise SynePruneError(f"teacher '{teacher_dir}' has a {auto_class_of(config).__name__} head with {_num_labels(config)} label(s), "
                             f"the export {auto_class_of(student).__name__} with {_num_labels(student)}; give a teacher fine-tuned on its task")
    for name in (SUPERNET_FILE, EXPORT_FILE):
        path = teacher_dir / name
        recorded = read_json(path, "teacher", "copy the teacher directory again").get("task") if path.is_file() else None
        if recorded is not None and not same_task(recorded, task):
            raise SynePruneError(f"teacher '{teacher_dir}' was trained on task '{task_name(recorded)}', the export on "
                                 f"'{task_name(task)}'; give a teacher of that task")
