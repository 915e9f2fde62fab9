"""Train a super-network: fine-tuning in which sub-networks of a search space are trained together.

The loop saves its full state (weights, optimizer, schedule, random generators) after every epoch in
``OUTPUT/.resume``, so ``resume=True`` continues a killed run from its last finished epoch. The final
checkpoint (see ``checkpoint.py``) is written last and the resume state removed only after it.
"""
from __future__ import annotations

import json
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import AutoTokenizer, get_linear_schedule_with_warmup

from syne_prune.data import EVAL_BATCH_SIZE, data_loader, encode, eval_batches, get_task, load_task
from syne_prune.errors import SynePruneError
from syne_prune.evaluation import default_device, evaluate
from syne_prune.export import load_model_config
from syne_prune.models import check_model_settings, get_architecture, load_task_model
from syne_prune.models.local_weights import resolve_model
from syne_prune.numerics import require_finite, require_finite_model_dir, require_finite_weights
from syne_prune.search_spaces import get_search_space
from syne_prune.supernet.checkpoint import METADATA_FILE, read_metadata, write_metadata
from syne_prune.supernet.strategies import get_strategy
from syne_prune.surgery import InPlaceMask, extract_subnetwork

RESUME_DIR = ".resume"


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
    output = Path(config.output)
    state = output / RESUME_DIR / "state.pt"
    old = output / (RESUME_DIR + ".old")
    if resume and not state.exists() and (old / "state.pt").is_file():
        old.rename(output / RESUME_DIR)  # killed in the middle of swapping in a newer state
    if resume and overwrite:
        raise SynePruneError("--resume and --overwrite exclude each other; pick one")
    if resume:
        if (output / METADATA_FILE).is_file() and not state.exists():
            return output
        if not state.is_file():
            raise SynePruneError(f"nothing to resume in '{output}' (no finished epoch saved); drop --resume to start anew")
        saved = json.loads((output / RESUME_DIR / "settings.json").read_text())
        if saved != json.loads(json.dumps(config.settings())):
            changed = sorted(k for k in saved if saved[k] != config.settings().get(k))
            raise SynePruneError(f"--resume with other settings than the interrupted run ({', '.join(changed)}); use the same ones")
        return output
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        if not overwrite:
            raise SynePruneError(f"output '{output}' already exists; pass --resume to continue it, --overwrite to replace it, or choose another --output")
        shutil.rmtree(output)
    output.mkdir(parents=True, exist_ok=True)
    return output


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
    check_model_settings(model_config, task, tokenizer, config.max_length, model_name=f"model '{config.model}'")
    require_finite_model_dir(source, f"model '{config.model}'")
    output = _prepare_output(config, resume, overwrite)
    if resume and (output / METADATA_FILE).is_file() and not (output / RESUME_DIR).exists():
        return read_metadata(output)  # already finished

    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    device = default_device()
    state_dir = output / RESUME_DIR
    resuming = resume and (state_dir / "state.pt").is_file()
    model_source = state_dir / "model" if resuming else source
    model = load_task_model(model_source, task).to(device)

    train_examples = encode(data.train, tokenizer, config.max_length, task.is_regression)
    validation = eval_batches(encode(data.validation, tokenizer, config.max_length, task.is_regression), tokenizer, config.eval_batch_size)
    test = eval_batches(encode(data.test, tokenizer, config.max_length, task.is_regression), tokenizer, config.eval_batch_size)
    steps_per_epoch = -(-len(train_examples) // config.batch_size)
    total_steps = steps_per_epoch * config.epochs

    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    schedule = get_linear_schedule_with_warmup(optimizer, num_warmup_steps=0, num_training_steps=total_steps)
    masker = InPlaceMask(model)
    strategy = get_strategy(config.strategy)(
        space, masker, np.random.RandomState(config.seed), task.is_regression, total_steps,
        temperature=config.temperature, num_random_subnets=config.num_random_subnets,
    )
    first_epoch, history = 0, []
    if resuming:
        state = torch.load(state_dir / "state.pt", weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        strategy.random_state.set_state(state["strategy_rng"])
        random.setstate(state["python_rng"])
        np.random.set_state(state["numpy_rng"])
        torch.set_rng_state(state["torch_rng"])
        first_epoch, history = state["epochs_done"], state["history"]

    started = time.time()
    for epoch in range(first_epoch, config.epochs):
        model.train()
        loader = data_loader(train_examples, tokenizer, config.batch_size, shuffle=True, seed=config.seed + epoch)
        bar = tqdm(loader, total=steps_per_epoch, desc=f"epoch {epoch + 1}/{config.epochs} [{config.strategy}]", disable=not progress)
        epoch_start, seen, loss_sum = time.time(), 0, 0.0
        for index, batch in enumerate(bar):
            batch = {k: v.to(device) for k, v in batch.items()}
            loss_sum += require_finite(strategy(model, batch, epoch * steps_per_epoch + index), f"training loss (epoch {epoch + 1}, step {index + 1})")
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            seen += len(batch["labels"])
            bar.set_postfix(loss=f"{loss_sum / (index + 1):.4f}", examples_per_s=f"{seen / (time.time() - epoch_start):.1f}")
        history.append({"epoch": epoch + 1, "train_loss": loss_sum / max(1, steps_per_epoch), "epoch_time_s": time.time() - epoch_start})
        _save_resume_state(state_dir, model, optimizer, schedule, strategy, epoch + 1, history, config)

    masker.remove()
    model.eval()
    metrics = {}
    for name, subnet in (("largest", space.largest()), ("smallest", space.smallest())):
        sub = extract_subnetwork(model, space.to_mask(subnet))
        metrics[name] = {"config": subnet, "validation": evaluate(sub, validation, task), "test": evaluate(sub, test, task)}

    require_finite_weights(model, "the trained super-network")
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
    """Write the state after a finished epoch into a temporary folder, then swap it in."""
    tmp = state_dir.with_name(RESUME_DIR + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp / "model")
    torch.save({
        "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
        "strategy_rng": strategy.random_state.get_state(), "python_rng": random.getstate(),
        "numpy_rng": np.random.get_state(), "torch_rng": torch.get_rng_state(),
        "epochs_done": epochs_done, "history": history,
    }, tmp / "state.pt")
    (tmp / "settings.json").write_text(json.dumps(config.settings(), indent=2))
    old = state_dir.with_name(RESUME_DIR + ".old")  # never a moment without a complete state on disk
    shutil.rmtree(old, ignore_errors=True)
    if state_dir.exists():
        state_dir.rename(old)
    tmp.rename(state_dir)
    shutil.rmtree(old, ignore_errors=True)
