"""Standard NAS: a trial fine-tunes its own sub-network (no weight sharing between trials).

The trial extracts the configuration's sub-network from the pre-trained model (physically smaller, so
cheaper to train), fine-tunes it for up to ``epochs`` epochs and reports after every epoch:
``epoch`` (= ``fidelity``, MO-ASHA's resource), validation ``error``, ``params``, ``macs`` (ratios to the
full model), ``test_error`` (never used by the search) and ``eval_s`` (seconds of training and
evaluation so far in this trial).

The epochs run in the one training loop (``syne_prune/training.py``). After every epoch the trial's
resume state (weights, optimizer, schedule, random generators, epoch; ``training.save_training_state``) is
written atomically to Syne Tune's per-trial checkpoint directory (``st_checkpoint_dir``; on SageMaker
the directory synced to the trial's ``checkpoint_s3_uri``). A trial started again on the same
directory (paused and resumed by a scheduler, or re-run) first reports its last saved epoch's result once
more, then continues after that epoch: the state is written before the report, so a process killed between
the two loses no result (Syne Tune may see that epoch twice, with the same values).
After the last epoch only the weights are kept (``weights.pt``): export reads them.

Run as a script, this file is the Syne Tune entry point for standard NAS.
"""
from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from syne_tune import Reporter

from syne_prune.aws import S3_URI, aws_error
from syne_prune.data import EVAL_BATCH_SIZE, TaskLike, check_task, encode, eval_batches, get_task, load_task, relocate
from syne_prune.errors import SynePruneError
from syne_prune.evaluation import default_device, evaluate
from syne_prune.files import atomic_write
from syne_prune.models import get_family, load_task_model, load_tokenizer, resolve_model
from syne_prune.numerics import require_finite_result, require_finite_weights
from syne_prune.objectives import measure_latency_ms, subnet_size
from syne_prune.search.protocol import parse_hyperparameters, process_start_time, run_trial, task_of_word, task_word
from syne_prune.search_spaces import SEARCH_SPACES, get_search_space
from syne_prune.surgery import extract_subnetwork
from syne_prune.training import FINETUNE_LR, LoopSettings, TrainingLoop, label_loss_step, seed_everything

STATE_FILE, WEIGHTS_FILE = "state.pt", "weights.pt"


@dataclass(frozen=True)
class FineTuneSettings:
    """How every trial of a standard-NAS search fine-tunes its sub-network (constants of the search). ``task``: a
    built-in task's name, or the user's data (a ``syne_prune.data.TaskSpec``, or its JSON record once the search has
    resolved it, which every trial reads); ``task_files``: the folder a trial reads the user's files from when it
    runs where their paths do not exist (a SageMaker job's channel; None: the paths the specification records)."""

    model: str
    task: TaskLike
    search_space: str = "small"
    epochs: int = 3
    lr: float = FINETUNE_LR
    batch_size: int = 32
    max_length: int = 128
    data_dir: str | None = None
    validation_fraction: float = 0.3
    seed: int = 0  # the validation hold-out, the fresh task head and the order of training batches
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    eval_batch_size: int = EVAL_BATCH_SIZE
    task_files: str | None = None

    def check(self) -> None:
        check_task(self.task)
        if self.search_space not in SEARCH_SPACES:
            raise SynePruneError(f"unknown search space '{self.search_space}'; choose one of {', '.join(SEARCH_SPACES)}")
        for name in ("epochs", "batch_size", "max_length", "eval_batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise SynePruneError(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
        if not self.lr > 0:
            raise SynePruneError(f"--lr must be positive, got {self.lr}")
        for name in ("max_train_examples", "max_eval_examples"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise SynePruneError(f"--{name.replace('_', '-')} must be positive, got {value}")
        for name in ("model", "data_dir"):
            if " " in (getattr(self, name) or ""):
                raise SynePruneError(f"--{name.replace('_', '-')} must not contain spaces (Syne Tune passes it on a command line); move or link it")

    def as_constants(self, objectives: tuple[str, ...]) -> dict[str, Any]:
        """Values for the Syne Tune config space: one word each (LocalBackend command line)."""
        return {
            "model": self.model, "task": task_word(self.task), "search_space": self.search_space, "epochs": self.epochs, "lr": self.lr,
            "batch_size": self.batch_size, "max_length": self.max_length, "data_dir": self.data_dir or "",
            "validation_fraction": self.validation_fraction, "seed": self.seed,
            "max_train_examples": self.max_train_examples or 0, "max_eval_examples": self.max_eval_examples or 0,
            "eval_batch_size": self.eval_batch_size, "objectives": ",".join(objectives), "task_files": self.task_files or "",
        }

    @classmethod
    def from_constants(cls, values: dict[str, Any]) -> tuple["FineTuneSettings", tuple[str, ...]]:
        settings = cls(
            model=str(values["model"]), task=task_of_word(str(values["task"])), search_space=str(values["search_space"]),
            epochs=int(values["epochs"]), lr=float(values["lr"]), batch_size=int(values["batch_size"]),
            max_length=int(values["max_length"]), data_dir=str(values["data_dir"]) or None,
            validation_fraction=float(values["validation_fraction"]), seed=int(values["seed"]),
            max_train_examples=int(values["max_train_examples"]) or None, max_eval_examples=int(values["max_eval_examples"]) or None,
            eval_batch_size=int(values["eval_batch_size"]), task_files=str(values.get("task_files") or "") or None,
        )
        return settings, tuple(str(values["objectives"]).split(","))


CONSTANTS = tuple(FineTuneSettings("m", "rte").as_constants(("error",)))


def load_pretrained(settings: FineTuneSettings):
    """The pre-trained model with a fresh task head (seeded), its tokenizer and the search space over it."""
    task = get_task(settings.task)
    source = resolve_model(settings.model)
    torch.manual_seed(settings.seed)
    model = load_task_model(source, task)
    tokenizer = load_tokenizer(source, f"model '{settings.model}'")
    space = get_search_space(settings.search_space, get_family(model.config).shape(model.config))
    return model, tokenizer, space


def fine_tune(settings: FineTuneSettings, config: dict[str, Any], checkpoint_dir: Path | None,
              report: Callable[[dict[str, Any]], None], objectives: tuple[str, ...] = ("error", "params")) -> dict[str, Any]:
    """Fine-tune the sub-network ``config`` epoch by epoch from its last checkpoint; ``report`` after each epoch."""
    weights_path = checkpoint_dir / WEIGHTS_FILE if checkpoint_dir is not None else None
    if weights_path is not None and weights_path.is_file() and not (checkpoint_dir / STATE_FILE).is_file():
        finished = torch.load(weights_path, weights_only=True, map_location="cpu")
        if finished.get("epoch") == settings.epochs and finished.get("result"):
            report(finished["result"])  # ran before (e.g. a search resumed after a crash): report; load and train nothing
            return finished["result"]

    started = time.perf_counter()
    task = get_task(relocate(settings.task, settings.task_files) if settings.task_files else settings.task)
    data = load_task(task, settings.data_dir, settings.validation_fraction, settings.seed,
                     settings.max_train_examples, settings.max_eval_examples)
    model, tokenizer, space = load_pretrained(settings)
    mask = space.to_mask(config)
    full, size = subnet_size(model), subnet_size(model, mask)
    static: dict[str, Any] = {"params": size.params / full.params, "macs": size.macs / full.macs}
    device = default_device()
    sub = extract_subnetwork(model, mask, share_weights=False).to(device)
    if "latency" in objectives:
        length = settings.max_length
        static["latency_ms"] = measure_latency_ms(sub.eval(), 1, length, vocab_size=model.config.vocab_size)
        static["latency"] = static["latency_ms"] / measure_latency_ms(model.to(device).eval(), 1, length, vocab_size=model.config.vocab_size)
    del model

    train = encode(data.train, tokenizer, settings.max_length, task.type)
    validation = eval_batches(encode(data.validation, tokenizer, settings.max_length, task.type), tokenizer, settings.eval_batch_size)
    test = eval_batches(encode(data.test, tokenizer, settings.max_length, task.type), tokenizer, settings.eval_batch_size)
    loop = TrainingLoop(sub, train, tokenizer, label_loss_step,
                        LoopSettings(settings.epochs, settings.lr, settings.batch_size, settings.seed, progress=False), device=device)
    state_path = checkpoint_dir / STATE_FILE if checkpoint_dir is not None else None
    result: dict[str, Any] = {}
    if state_path is not None and loop.resume(state_path):
        spent = loop.extra["seconds"]
        result = loop.extra.get("result", {})
        if result:
            report(result)  # the process may have been killed after saving it and before reporting it
    else:
        spent = 0.0
        seed_everything(settings.seed)

    def evaluate_save_report(record: dict[str, Any]) -> None:
        nonlocal result
        sub.eval()
        valid_error = evaluate(sub, validation, task)["error"]
        test_error = evaluate(sub, test, task)["error"]
        seconds = spent + time.perf_counter() - started
        epoch = record["epoch"]
        result = {"epoch": epoch, "fidelity": epoch, "error": valid_error, "valid_error": valid_error,
                  "test_error": test_error, "train_loss": record["train_loss"], "eval_s": seconds, **static}
        if checkpoint_dir is not None:
            if epoch == settings.epochs:
                _save_weights(checkpoint_dir, sub, epoch, result)
            else:
                loop.save(state_path, seconds=seconds, result=result)
        report(require_finite_result(result))

    loop.run(evaluate_save_report)
    return result


def _save_weights(directory: Path, sub, epoch: int, last: dict[str, Any]) -> None:
    """After the last epoch (``last``: its report) keep the weights only, replacing the resume state atomically."""
    require_finite_weights(sub, "the fine-tuned sub-network")
    require_finite_result(last)  # weights.pt keeps the result a re-run reports without training
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write(directory / WEIGHTS_FILE, lambda tmp: torch.save({"model": sub.state_dict(), "epoch": epoch, "result": last}, tmp))
    (directory / STATE_FILE).unlink(missing_ok=True)


def load_trained(model, space, config: dict[str, Any], checkpoint: str | Path):
    """A finished trial's fine-tuned sub-network (for export), from the pre-trained ``model`` it was extracted from."""
    if str(checkpoint).startswith("s3://"):  # a trial that ran on SageMaker: its checkpoint_s3_uri
        with tempfile.TemporaryDirectory() as folder:
            state = torch.load(_download_weights(str(checkpoint), Path(folder)), weights_only=True, map_location="cpu")
    else:
        path = Path(checkpoint) / WEIGHTS_FILE
        if not path.is_file():
            raise SynePruneError(f"{path} not found: the trial's fine-tuned weights are missing; choose a trial that completed all epochs")
        state = torch.load(path, weights_only=True, map_location="cpu")
    sub = extract_subnetwork(model, space.to_mask(config), share_weights=False)
    sub.load_state_dict(state["model"])
    return sub.eval()


def _download_weights(uri: str, folder: Path) -> Path:
    """``URI/weights.pt`` into ``folder`` with boto3 (credentials and region as boto3 finds them)."""
    import boto3  # optional (syne-prune[sagemaker]): only trials that ran on SageMaker need it
    from botocore.exceptions import ClientError  # optional, as boto3

    match = S3_URI.match(uri)
    if match is None:
        raise SynePruneError(f"'{uri}' is not an S3 location (s3://BUCKET/PREFIX/)")
    bucket, key = match.group(1), f"{(match.group(2) or '').strip('/')}/{WEIGHTS_FILE}".lstrip("/")
    target = folder / WEIGHTS_FILE
    try:
        boto3.client("s3").download_file(bucket, key, str(target))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
            raise SynePruneError(f"s3://{bucket}/{key} not found: the trial's fine-tuned weights are missing; choose a trial "
                                 "that completed all epochs") from None
        raise aws_error(error, f"downloading s3://{bucket}/{key} failed") from None
    except Exception as error:  # noqa: BLE001 - no credentials, no network: one line
        raise aws_error(error, f"downloading s3://{bucket}/{key} failed") from None
    return target


def main(argv: list[str] | None = None) -> int:
    """A standard-NAS trial process: fine-tune the configuration's sub-network, reporting after every epoch."""
    return run_trial(lambda: _fine_tune_trial(sys.argv[1:] if argv is None else argv))


def _fine_tune_trial(argv: list[str]) -> None:
    constants, hyperparameters = parse_hyperparameters(argv, CONSTANTS + ("st_checkpoint_dir",))
    checkpoint = constants.pop("st_checkpoint_dir") or None
    settings, objectives = FineTuneSettings.from_constants(constants)
    config = {k: int(v) for k, v in hyperparameters.items()}
    reporter = Reporter()
    setup_s = time.time() - process_start_time()  # interpreter and imports

    def report(result: dict[str, Any]) -> None:
        reporter(**result, setup_s=setup_s)

    fine_tune(settings, config, Path(checkpoint) if checkpoint else None, report, objectives)


if __name__ == "__main__":
    sys.exit(main())
