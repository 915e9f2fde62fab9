"""Train a super-network: fine-tuning in which sub-networks of a search space are trained together.

The loop (``syne_prune/training.py``, shared with standard NAS and recovery) saves its full state
(weights, optimizer, schedule, random generators) after every epoch in ``OUTPUT/.resume``, so ``resume=True``
continues a killed run from its last finished epoch. The final checkpoint (see ``checkpoint.py``) is written last and the resume state removed only after it.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from syne_prune.artifacts import COMPUTE_KEY, SUPERNET_FILE, SupernetDir, compute_record
from syne_prune.data import (
    EVAL_BATCH_SIZE,
    TaskSpec,
    check_task,
    check_unchanged,
    data_loader,
    describe_spec,
    encode,
    evaluation_batches,
    load_task,
    resolve_task,
    task_record,
)
from syne_prune.errors import SynePruneError
from syne_prune.evaluation import constant_answer, default_device, evaluate, warn_if_not_learned
from syne_prune.files import atomic_write_text, output_lock, writing
from syne_prune.importance import IMPORTANCE_METHODS, ORDERED_ATTRIBUTE, order_by_importance, ordered_by
from syne_prune.models import check_model_files, check_model_settings, get_family, load_model_config, load_task_model, load_tokenizer, resolve_model
from syne_prune.numerics import require_finite_weights
from syne_prune.search_spaces import get_search_space
from syne_prune.supernet.layer_distillation import LAYER_DISTILLATION, LayerDistillation
from syne_prune.supernet.strategies import get_strategy
from syne_prune.supernet.teacher import AUTO, NONE, TEACHER_DIR, grid_directory, grid_record, is_trained_for, load_teacher, print_grid
from syne_prune.surgery import InPlaceMask, extract_subnetwork
from syne_prune.training import (
    FINETUNE_LR,
    RESUME_DIR,
    LoopSettings,
    TrainingLoop,
    prepare_output,
    read_settings,
    save_training_state,
    seed_everything,
    steps_per_epoch,
    write_settings,
)
from syne_prune.versions import software_versions

IMPORTANCE_FILE = ".importance.json"  # the ordering record, kept for a resumed run until supernet.json is written
IMPORTANCE_CHOICES = ("none", *IMPORTANCE_METHODS)


# settings an older supernet.json lacks, with the value that format implied (teacher_learning_rates None: the teacher
# was fine-tuned once, with the super-network's lr and warmup_ratio)
ADDED = {"warmup_ratio": 0.0, "teacher_learning_rates": None, "teacher_warmup_ratio": 0.1, "layer_distillation": "none",
         "layer_distillation_weight": 1.0}
# --teacher auto's grid: the learning rates of benchmarks/quality.py's reference fine-tunes, each with 10% warm-up; the
# teacher is the fine-tune with the lowest validation error (a careful fine-tune, as the unpruned reference is)
TEACHER_LEARNING_RATES = (3e-5, 8e-5, 1.5e-4)


@dataclass
class TrainingConfig:
    model: str
    task: str | TaskSpec  # a built-in task's name, or the user's data (syne_prune.data.TaskSpec)
    output: str
    data_dir: str | None = None
    search_space: str = "small"
    strategy: str = "full"
    epochs: int = 3
    lr: float = FINETUNE_LR
    warmup_ratio: float = 0.0  # share of the steps over which the learning rate rises linearly to lr (then decays to 0)
    batch_size: int = 32
    max_length: int = 128
    temperature: float = 1.0
    num_random_subnets: int = 1
    seed: int = 0
    validation_fraction: float = 0.3
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    eval_batch_size: int = EVAL_BATCH_SIZE
    # 'auto' (fine-tune the full model first, then distil from it; the measured lever that matters most, BENCHMARKS.md),
    # a fine-tuned model directory, or 'none'/None (no fixed teacher); 'auto' means none for strategy standard
    teacher: str | None = AUTO
    # with teacher 'auto': fine-tune once per learning rate (warm-up over teacher_warmup_ratio of the steps) and keep the
    # one best on validation; None: one fine-tune with the super-network's lr and warmup_ratio
    teacher_learning_rates: tuple[float, ...] | None = TEACHER_LEARNING_RATES
    teacher_warmup_ratio: float = 0.1
    # 'hidden': every distilled sub-network also matches each kept layer's hidden states to the fixed teacher's
    # (supernet/layer_distillation.py), weighted by layer_distillation_weight next to the logit distillation
    layer_distillation: str = "none"
    layer_distillation_weight: float = 1.0
    importance: str = "fisher"  # order heads and neurons by importance before training (syne_prune.importance), or "none"
    importance_examples: int = 256  # training examples the importance scores are computed on
    extra: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        """Every foreseeable mistake as a one-line SynePruneError, before anything is loaded or written."""
        check_task(self.task)
        get_strategy(self.strategy)
        if self.importance not in IMPORTANCE_CHOICES:
            raise SynePruneError(f"unknown importance method '{self.importance}'; choose one of {', '.join(IMPORTANCE_CHOICES)}")
        for name in ("epochs", "batch_size", "max_length", "eval_batch_size", "importance_examples"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise SynePruneError(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
        for name in ("lr", "temperature"):
            if not getattr(self, name) > 0:
                raise SynePruneError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if not 0 <= self.warmup_ratio < 1:
            raise SynePruneError(f"--warmup-ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.num_random_subnets < 0:
            raise SynePruneError(f"--num-random-subnets must be >= 0, got {self.num_random_subnets}")
        for name in ("max_train_examples", "max_eval_examples"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise SynePruneError(f"--{name.replace('_', '-')} must be positive, got {value}")
        self._check_teacher_settings()
        if self.teacher not in (None, AUTO, NONE) and not Path(self.teacher).is_dir():
            raise SynePruneError(f"--teacher '{self.teacher}' is not a directory; give a fine-tuned model directory, 'auto' or 'none'")

    def _check_teacher_settings(self) -> None:
        rates = self.teacher_learning_rates
        if rates is not None and (not rates or not all(isinstance(lr, (int, float)) and lr > 0 for lr in rates)):
            raise SynePruneError(f"--teacher-learning-rates must be positive numbers (e.g. 3e-5,8e-5) or none, got {rates}")
        if not 0 <= self.teacher_warmup_ratio < 1:
            raise SynePruneError(f"--teacher-warmup-ratio must be in [0, 1), got {self.teacher_warmup_ratio}")
        if self.layer_distillation not in LAYER_DISTILLATION:
            raise SynePruneError(f"--layer-distillation must be one of {', '.join(LAYER_DISTILLATION)}, got '{self.layer_distillation}'")
        if not self.layer_distillation_weight >= 0:
            raise SynePruneError(f"--layer-distillation-weight must be >= 0, got {self.layer_distillation_weight}")
        if self.layer_distillation != "none" and self.fixed_teacher() is None:
            raise SynePruneError("--layer-distillation needs a fixed teacher to match; pass --teacher auto or a fine-tuned model "
                                 "directory (with --strategy standard: a directory)")

    def fixed_teacher(self) -> str | None:
        """The teacher this run distils from: a directory, ``AUTO`` (fine-tune one first) or None. ``auto`` with
        the ``standard`` strategy is None: standard training is itself the fine-tune ``auto`` would run."""
        if self.teacher in (None, NONE) or (self.teacher == AUTO and self.strategy == "standard"):
            return None
        return self.teacher

    def settings(self) -> dict[str, Any]:
        """What must match for --resume to continue a run. Settings added after checkpoints were written (``ADDED``)
        appear only when they differ from their default, so those checkpoints' records still match."""
        settings = asdict(self)
        if settings["teacher_learning_rates"] is not None:
            settings["teacher_learning_rates"] = list(settings["teacher_learning_rates"])  # as JSON reads it back
        return {k: v for k, v in settings.items() if k not in ("output", "extra") and not (k in ADDED and v == ADDED[k])}




def _prepare_output(config: TrainingConfig, resume: bool, overwrite: bool, check_only: bool = False) -> Path:
    output = Path(config.output)
    if (resume and not overwrite and config.fixed_teacher() == AUTO and (output / TEACHER_DIR).is_dir()
            and not (output / RESUME_DIR / "state.pt").is_file()):
        return output  # killed while fine-tuning the teacher or before the first epoch: train_auto_teacher continues
    return prepare_output(output, config.settings(), resume, overwrite, SUPERNET_FILE, check_only=check_only)


def train_supernet(config: TrainingConfig, resume: bool = False, overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train a super-network and write its checkpoint to ``config.output``; returns its metadata.

    Raises ``SynePruneError`` before the output directory is created or touched for bad settings, data, model,
    tokenizer (missing, needing a package, broken), weight files (missing shard, truncated, non-finite) or teacher,
    and when the output exists without ``resume``/``overwrite``; also when another process is training into the
    same output (``output_lock``) and, naming the path, when a write fails (the last finished epoch's resume state
    is kept, so ``resume`` continues)."""
    config.check()
    if resume:
        _check_recorded_data(Path(config.output))
    model_config = load_model_config(config.model)
    arch = get_family(model_config)
    space = get_search_space(config.search_space, arch.shape(model_config))
    # Everything that can fail on bad input fails here, before the output directory is touched.
    task = resolve_task(config.task, model_config)
    if task.spec is not None:  # the resume settings record the resolved task, the files' sha256 with it
        config = replace(config, task=task.spec)
    if task.spec is not None and progress:
        print(f"task '{task.name}': {describe_spec(task.spec)}", flush=True)
    data = load_task(task, config.data_dir, config.validation_fraction, config.seed,
                     config.max_train_examples, config.max_eval_examples)
    source = resolve_model(config.model)
    tokenizer = load_tokenizer(source, f"model '{config.model}'")
    check_model_settings(model_config, task, tokenizer, config.max_length, model_name=f"model '{config.model}'")
    check_model_files(source, f"model '{config.model}'", "use a checkpoint with finite weights")
    teacher = None
    if config.fixed_teacher() not in (None, AUTO):
        teacher = load_teacher(config.teacher, model_config, tokenizer, task, output=config.output)
    auto = config.fixed_teacher() == AUTO
    if auto and is_trained_for(model_config, task):  # the user's own fine-tuned classifier: the teacher as it is
        teacher, auto = load_teacher(source, model_config, tokenizer, task, source=AUTO), False
        if progress:
            print(f"--teacher auto: '{config.model}' already classifies exactly these labels; it is the teacher as it is "
                  "(no second fine-tune)", flush=True)
    seed_everything(config.seed)
    # loaded (its new task head drawn right after seeding) before the output exists; with --teacher auto the super-network
    # starts from the teacher instead, and a local --model's files were just checked, so only a hub id is loaded here
    model = None if auto and Path(source).is_dir() else load_task_model(source, task)
    _prepare_output(config, resume, overwrite, check_only=True)
    with output_lock(config.output, "super-network training"):
        output = _prepare_output(config, resume, overwrite)
        if resume and (output / SUPERNET_FILE).is_file() and not (output / RESUME_DIR).exists():
            return SupernetDir(output).read()  # already finished
        if auto:
            # the super-network starts from the fine-tuned teacher's weights (DynaBERT's recipe): its sub-networks begin
            # from a model that knows the task, and the importance scores are those of a trained task head
            model = None
            directory, grid = _fine_tune_auto_teacher(config, progress)
            source = str(directory)
            teacher = load_teacher(source, model_config, tokenizer, task, source=AUTO)
            teacher.fine_tune = grid
            seed_everything(config.seed)
            model = load_task_model(source, task)
        return _train(config, output, model, tokenizer, teacher, (space, task, data, source), resume, progress)


def _train(config: TrainingConfig, output: Path, model, tokenizer, teacher, run: tuple, resume: bool, progress: bool) -> dict[str, Any]:
    """Train ``model`` (loaded, seeded) into the prepared ``output``; ``run``: (space, task, data, source)."""
    space, task, data, source = run
    device = default_device()
    state_dir = output / RESUME_DIR
    model = model.to(device)
    if resume and (state_dir / "state.pt").is_file() and (output / IMPORTANCE_FILE).is_file():
        # its weights come back ordered from the resume state (loop.resume below): do not order them again
        setattr(model.config, ORDERED_ATTRIBUTE, json.loads((output / IMPORTANCE_FILE).read_text())["method"])
    if teacher is not None:
        teacher.to(device)

    train_examples = encode(data.train, tokenizer, config.max_length, task.type)
    validation, test = (evaluation_batches(split, tokenizer, config.max_length, task.type, config.eval_batch_size)
                        for split in (data.validation, data.test))
    importance = _order_by_importance(config, model, train_examples, tokenizer, output / IMPORTANCE_FILE)
    total_steps = steps_per_epoch(len(train_examples), config.batch_size) * config.epochs

    masker = InPlaceMask(model)
    strategy = get_strategy(config.strategy)(
        space, masker, np.random.RandomState(config.seed), task.type, total_steps,
        temperature=config.temperature, num_random_subnets=config.num_random_subnets, teacher=teacher,
        layer_distillation=None if config.layer_distillation == "none" else LayerDistillation(teacher.model, config.layer_distillation_weight),
    )
    loop = TrainingLoop(model, train_examples, tokenizer, strategy,
                        LoopSettings(config.epochs, config.lr, config.batch_size, config.seed, config.warmup_ratio, description=config.strategy,
                                     progress=progress),
                        random_state=strategy.random_state, device=device)
    if resume:
        loop.resume(state_dir / "state.pt")
    loop.run(lambda record: _save_resume_state(state_dir, model, loop.optimizer, loop.schedule, strategy, loop.epochs_done, loop.history, config,
                                                loop.compute_record()))

    masker.remove()
    return _write_checkpoint(config, output, model, tokenizer, space, task, data, (validation, test), teacher, source, loop.history,
                             importance, compute_record(loop.precision, loop.device.type))


def _write_checkpoint(config: TrainingConfig, output: Path, model, tokenizer, space, task, data, splits, teacher, source,
                      history: list[dict], importance, compute: dict[str, str]) -> dict[str, Any]:
    """The trained super-network's checkpoint: weights, tokenizer and ``supernet.json`` (the largest and smallest
    sub-networks scored on the validation and test ``splits``); removes the resume state. Returns the metadata."""
    validation, test = splits
    model.eval()
    metrics = {}
    for name, subnet in (("largest", space.largest()), ("smallest", space.smallest())):
        sub = extract_subnetwork(model, space.to_mask(subnet))
        metrics[name] = {"config": subnet, "validation": evaluate(sub, validation, task), "test": evaluate(sub, test, task)}
    teacher_record = None if teacher is None else {"source": teacher.source, "path": teacher.path,
                                                     "validation": evaluate(teacher.model, validation, task),
                                                     "test": evaluate(teacher.model, test, task),
                                                     **({"fine_tune": teacher.fine_tune} if teacher.fine_tune else {})}
    constant = constant_answer(task, data.validation.labels)  # recorded; warn_if_not_learned reads it below

    require_finite_weights(model, "the trained super-network")
    with writing(output):  # a failed write keeps the resume state: --resume writes the checkpoint again
        model.save_pretrained(output)
        tokenizer.save_pretrained(output)
    metadata = SupernetDir(output).write({
        "model": config.model,
        "initialised_from": str(source),
        "model_type": model.config.model_type,
        "task": task_record(task),
        "metric": task.metric_name,
        "search_space": config.search_space,
        "strategy": config.strategy,
        "teacher": teacher_record,
        "seed": config.seed,
        "hyperparameters": config.settings(),
        "num_train_examples": len(data.train),
        "num_validation_examples": len(data.validation),
        "num_test_examples": 0 if data.test is None else len(data.test),
        "history": history,
        "train_time_s": sum(h["epoch_time_s"] for h in history),
        "metrics": metrics,
        "constant_answer": {"validation": constant},  # what answering one value everywhere scores (see has_learned)
        "importance": importance,
        COMPUTE_KEY: compute,
        "versions": software_versions(),
    })
    shutil.rmtree(output / RESUME_DIR, ignore_errors=True)
    (output / IMPORTANCE_FILE).unlink(missing_ok=True)
    warn_if_not_learned(metadata)
    return metadata


def _check_recorded_data(output: Path) -> None:
    """A resumed run: the user's data files it recorded (its resume settings, or the finished run's supernet.json)
    are unchanged (``syne_prune.data.check_unchanged``: one line naming a changed file and both sha256)."""
    recorded = read_settings(output)
    if recorded is None and (output / SUPERNET_FILE).is_file():
        recorded = SupernetDir(output).read()
    task = (recorded or {}).get("task")
    if isinstance(task, dict):
        check_unchanged(TaskSpec.from_json(task))


def _fine_tune_auto_teacher(config: TrainingConfig, progress: bool) -> tuple[Path, dict[str, Any] | None]:
    """``--teacher auto``: fine-tune the full model with the ``standard`` strategy (the config's data, epochs, seed),
    once per learning rate of ``teacher_learning_rates`` (warm-up ``teacher_warmup_ratio``) into
    ``OUTPUT/teacher/lr-<lr>``, and return the directory of the one with the lowest validation error and the grid's
    record (``teacher.grid_record``); with ``teacher_learning_rates=None`` one fine-tune with the config's lr and
    warmup_ratio into ``OUTPUT/teacher`` and no record. Finished fine-tunes are reused, an interrupted one continued."""
    base = replace(config, strategy="standard", teacher=None, importance="none", teacher_learning_rates=None, layer_distillation="none",
                   layer_distillation_weight=ADDED["layer_distillation_weight"])
    root = Path(config.output) / TEACHER_DIR
    if config.teacher_learning_rates is None:
        return _fine_tune_teacher(replace(base, output=str(root)), progress), None
    runs = []
    for lr in config.teacher_learning_rates:
        directory = _fine_tune_teacher(replace(base, lr=lr, warmup_ratio=config.teacher_warmup_ratio, output=str(root / grid_directory(lr))),
                                       progress)
        runs.append((lr, directory, SupernetDir(directory).read()))
    grid = grid_record(runs, config.teacher_warmup_ratio)
    if progress:
        print_grid(grid)
    return Path(grid["path"]), grid


def _fine_tune_teacher(teacher_config: TrainingConfig, progress: bool) -> Path:
    """One fine-tune of the teacher into ``teacher_config.output``; a finished one there is reused (its settings must
    match), an interrupted one continued. Returns the directory."""
    directory = Path(teacher_config.output)
    if (directory / SUPERNET_FILE).is_file() and not (directory / RESUME_DIR).exists():
        saved, wanted = SupernetDir(directory).read()["hyperparameters"], json.loads(json.dumps(teacher_config.settings()))
        if saved != wanted:
            changed = sorted(k for k in saved.keys() | wanted.keys() if saved.get(k) != wanted.get(k))
            raise SynePruneError(f"the teacher in '{directory}' was fine-tuned with other settings ({', '.join(changed)}); "
                                 f"use the same ones or --overwrite")
        return directory
    resumable = (directory / RESUME_DIR / "state.pt").is_file()
    if progress:
        print(f"fine-tuning the teacher (--teacher auto, strategy standard, lr {teacher_config.lr:g}) into {directory}", flush=True)
    train_supernet(teacher_config, resume=resumable, overwrite=not resumable, progress=progress)
    return directory


def _order_by_importance(config: TrainingConfig, model, train_examples: list[dict], tokenizer, record_path: Path) -> dict[str, Any]:
    """Permute heads and neurons by importance on the first ``importance_examples`` training examples
    (the training split is in seeded random order) and keep the record; a model that is already ordered (a
    resumed run's saved model, or a super-network checkpoint) is left as it is, with the record it has.
    ``standard`` trains no sub-network, so it orders nothing: a fine-tuned model it writes (e.g. a teacher, then
    the start of a super-network) is ordered later, with the scores of its trained task head."""
    if config.importance == "none":
        return {"method": "none"}
    if config.strategy == "standard":
        return {"method": "none", "reason": "the standard strategy trains only the full network"}
    if record_path.is_file() and ordered_by(model):
        return json.loads(record_path.read_text())  # resumed: the resume state holds the ordered weights
    subset = train_examples[: config.importance_examples]
    batches = data_loader(subset, tokenizer, config.batch_size)
    record = order_by_importance(model, batches, config.importance)
    atomic_write_text(record_path, json.dumps(record))
    return record


def _save_resume_state(state_dir: Path, model, optimizer, schedule, strategy, epochs_done: int, history, config, compute) -> None:
    """The resume state after a finished epoch (``training.save_training_state``; ``compute``: the loop's precision,
    device and scaler) and the settings a resume must match."""
    write_settings(state_dir.parent, config.settings())
    save_training_state(state_dir / "state.pt", model, optimizer, schedule, epochs_done, history, strategy.random_state, compute=compute)
