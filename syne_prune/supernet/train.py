"""Train a super-network: fine-tuning in which sub-networks of a search space are trained together.

The loop (``syne_prune/training.py``, shared with standard NAS and recovery) saves its full state
(weights, optimizer, schedule, random generators) after every epoch in ``OUTPUT/.resume``, so ``resume=True`` continues a killed run from its last finished epoch. The final
checkpoint (see ``checkpoint.py``) is written last and the resume state removed only after it.
"""
from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoTokenizer

from syne_prune.data import EVAL_BATCH_SIZE, encode, eval_batches, get_task, load_task
from syne_prune.errors import SynePruneError
from syne_prune.evaluation import evaluate
from syne_prune.export import load_model_config
from syne_prune.models import get_architecture, load_task_model
from syne_prune.models.local_weights import resolve_model
from syne_prune.search_spaces import get_search_space
from syne_prune.supernet.checkpoint import METADATA_FILE, read_metadata, write_metadata
from syne_prune.supernet.strategies import get_strategy
from syne_prune.surgery import InPlaceMask, extract_subnetwork
from syne_prune.training import (
    RESUME_DIR,
    LoopSettings,
    TrainingLoop,
    prepare_output,
    save_training_state,
    seed_everything,
    steps_per_epoch,
    write_settings,
)


@dataclass
class TrainingConfig:
    model: str
    task: str
    output: str
    data_dir: str | None = None
    search_space: str = "small"
    strategy: str = "full"
    epochs: int = 3
    lr: float = 2e-5
    batch_size: int = 32
    max_length: int = 128
    temperature: float = 1.0
    num_random_subnets: int = 1
    seed: int = 0
    validation_fraction: float = 0.3
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    eval_batch_size: int = EVAL_BATCH_SIZE
    extra: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        """Every foreseeable mistake as a one-line SynePruneError, before anything is loaded or written."""
        get_task(self.task)
        get_strategy(self.strategy)
        for name in ("epochs", "batch_size", "max_length", "eval_batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise SynePruneError(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
        for name in ("lr", "temperature"):
            if not getattr(self, name) > 0:
                raise SynePruneError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if self.num_random_subnets < 0:
            raise SynePruneError(f"--num-random-subnets must be >= 0, got {self.num_random_subnets}")
        for name in ("max_train_examples", "max_eval_examples"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise SynePruneError(f"--{name.replace('_', '-')} must be positive, got {value}")

    def settings(self) -> dict[str, Any]:
        """What must match for --resume to continue a run."""
        return {k: v for k, v in asdict(self).items() if k not in ("output", "extra")}




def _prepare_output(config: TrainingConfig, resume: bool, overwrite: bool) -> Path:
    return prepare_output(config.output, config.settings(), resume, overwrite, METADATA_FILE)


def train_supernet(config: TrainingConfig, resume: bool = False, overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train a super-network and write its checkpoint to ``config.output``; returns its metadata."""
    config.check()
    model_config = load_model_config(config.model)
    arch = get_architecture(model_config)
    space = get_search_space(config.search_space, arch.shape(model_config))
    task = get_task(config.task)
    # Everything that can fail on bad input fails here, before the output directory is touched.
    data = load_task(config.task, config.data_dir, config.validation_fraction, config.seed,
                     config.max_train_examples, config.max_eval_examples)
    source = resolve_model(config.model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError, TypeError):
        raise SynePruneError(f"model '{config.model}' has no tokenizer; save one next to the model (tokenizer.save_pretrained)") from None
    output = _prepare_output(config, resume, overwrite)
    if resume and (output / METADATA_FILE).is_file() and not (output / RESUME_DIR).exists():
        return read_metadata(output)  # already finished

    seed_everything(config.seed)
    state_dir = output / RESUME_DIR
    model = load_task_model(source, task)

    train_examples = encode(data.train, tokenizer, config.max_length, task.is_regression)
    validation = eval_batches(encode(data.validation, tokenizer, config.max_length, task.is_regression), tokenizer, config.eval_batch_size)
    test = eval_batches(encode(data.test, tokenizer, config.max_length, task.is_regression), tokenizer, config.eval_batch_size)
    total_steps = steps_per_epoch(len(train_examples), config.batch_size) * config.epochs

    masker = InPlaceMask(model)
    strategy = get_strategy(config.strategy)(
        space, masker, np.random.RandomState(config.seed), task.is_regression, total_steps,
        temperature=config.temperature, num_random_subnets=config.num_random_subnets,
    )
    loop = TrainingLoop(model, train_examples, tokenizer, strategy,
                        LoopSettings(config.epochs, config.lr, config.batch_size, config.seed, description=config.strategy, progress=progress),
                        random_state=strategy.random_state)
    if resume:
        loop.resume(state_dir / "state.pt")
    loop.run(lambda record: _save_resume_state(state_dir, model, loop.optimizer, loop.schedule, strategy, loop.epochs_done, loop.history, config))
    history = loop.history

    masker.remove()
    model.eval()
    metrics = {}
    for name, subnet in (("largest", space.largest()), ("smallest", space.smallest())):
        sub = extract_subnetwork(model, space.to_mask(subnet))
        metrics[name] = {"config": subnet, "validation": evaluate(sub, validation, task), "test": evaluate(sub, test, task)}

    model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    import syne_prune
    import transformers
    import syne_tune

    metadata = write_metadata(output, {
        "model": config.model,
        "model_type": model.config.model_type,
        "task": config.task,
        "metric": task.metric_name,
        "search_space": config.search_space,
        "strategy": config.strategy,
        "seed": config.seed,
        "hyperparameters": config.settings(),
        "num_train_examples": len(data.train),
        "num_validation_examples": len(data.validation),
        "num_test_examples": len(data.test),
        "history": history,
        "train_time_s": sum(h["epoch_time_s"] for h in history),
        "metrics": metrics,
        "versions": {"syne_prune": syne_prune.__version__, "torch": torch.__version__,
                     "transformers": transformers.__version__, "syne_tune": syne_tune.__version__},
    })
    shutil.rmtree(state_dir, ignore_errors=True)
    return metadata


def _save_resume_state(state_dir: Path, model, optimizer, schedule, strategy, epochs_done: int, history, config) -> None:
    """The resume state after a finished epoch (``training.save_training_state``) and the settings a resume must match."""
    write_settings(state_dir.parent, config.settings())
    save_training_state(state_dir / "state.pt", model, optimizer, schedule, epochs_done, history, strategy.random_state)
