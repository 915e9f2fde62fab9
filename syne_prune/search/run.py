"""Multi-objective search: Syne Tune's Tuner over sub-network configurations.

Each trial is one configuration (its hyperparameters are the mask). Two modes:
- weight-sharing (``supernet``): every trial reads the same verified super-network checkpoint and
  only evaluates its sub-network (``trial.py``);
- standard NAS (``finetune``): every trial fine-tunes its own sub-network of the pre-trained model and
  reports after every epoch (``finetune.py``); MO-ASHA, the default here, stops weak ones by epoch.

 Results go to ``trials.csv`` as trials finish; ``--resume``
replays the finished trials into a fresh scheduler (so it neither loses nor repeats them) and runs
the remaining budget as a new part of the Syne Tune experiment (``syne-tune/part-K``).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from syne_tune import Tuner
from syne_tune.backend.trial_status import Status
from syne_tune.optimizer.scheduler import SchedulerDecision, TrialScheduler
from syne_tune.tuner_callback import TunerCallback

from syne_prune.data import EVAL_BATCH_SIZE
from syne_prune.errors import SynePruneError
from syne_prune.numerics import non_finite_items, require_finite_model_dir
from syne_prune.search import results as R
from syne_prune.search.console import LOG_FILE, third_party_output_to
from syne_prune.search.syne_tune_fixes import FixedLocalBackend, QuietTunerLogger, no_best_metric_table
from syne_prune.search.schedulers import FIDELITY_ATTR, MULTI_FIDELITY, SCHEDULERS, make_scheduler
from syne_prune.search.finetune import FineTuneSettings
from syne_prune.search.sagemaker import SageMakerSettings
from syne_prune.search.trial import FAILURE_PREFIX, OBJECTIVES, TrialSettings, fidelity_levels, load_search_data

SETTINGS_FILE = "search.json"
BACKENDS = ("pool", "local", "sagemaker")  # pool: persistent workers (weight-sharing default); local: a process per trial; sagemaker: a job per trial
MODES = ("weight-sharing", "standard")
TEST_SPLITS = ("pareto", "every-trial")  # which trials are scored on the test split (GLUE dev), which the search never uses


@dataclass
class SearchConfig:
    """A search. Weight-sharing: give ``supernet``. Standard NAS: give ``finetune`` (and supernet=None)."""

    supernet: str | None
    output: str
    scheduler: str | None = None  # default: morea (weight-sharing), moasha (standard)
    objectives: tuple[str, ...] = ("error", "params")
    backend: str | None = None  # default: pool (weight-sharing), local (standard)
    n_workers: int = 2
    max_trials: int | None = None
    max_wallclock_s: float | None = None
    seed: int = 0
    data_dir: str | None = None
    fidelity_levels: int = 9
    eval_batch_size: int = EVAL_BATCH_SIZE
    max_eval_examples: int | None = None
    trial_timeout_s: float | None = 1800.0
    test_split: str | None = None  # default: pareto (scored after the search); every-trial on SageMaker and in standard NAS
    finetune: FineTuneSettings | None = None
    sagemaker: SageMakerSettings | None = None  # with backend "sagemaker"

    def __post_init__(self) -> None:
        if self.scheduler is None:
            self.scheduler = "moasha" if self.finetune is not None else "morea"
        if self.backend is None:
            self.backend = "local" if self.finetune is not None else "pool"
        if self.test_split is None:
            self.test_split = "every-trial" if self.finetune is not None or self.backend == "sagemaker" else "pareto"

    @property
    def mode(self) -> str:
        return "standard" if self.finetune is not None else "weight-sharing"

    def check(self) -> None:
        if (self.supernet is None) == (self.finetune is None):
            raise SynePruneError("give --supernet DIR (weight-sharing search) or --mode standard with --model and --task, not both")
        if self.finetune is not None:
            self.finetune.check()
            if self.backend == "pool":
                raise SynePruneError("--backend pool shares one super-network between trials; standard NAS trains a network per trial: use --backend local")
        if self.scheduler not in SCHEDULERS:
            raise SynePruneError(f"unknown scheduler '{self.scheduler}'; choose one of {', '.join(SCHEDULERS)}")
        unknown = [o for o in self.objectives if o not in OBJECTIVES]
        if unknown:
            raise SynePruneError(f"unknown objective(s) {', '.join(unknown)}; choose from {', '.join(OBJECTIVES)}")
        if "error" not in self.objectives or len(self.objectives) < 2 or len(set(self.objectives)) != len(self.objectives):
            raise SynePruneError("--objectives must list error and at least one size objective (params, macs, latency), each once, e.g. error,params")
        if self.backend not in BACKENDS:
            raise SynePruneError(f"unknown backend '{self.backend}'; choose one of {', '.join(BACKENDS)}")
        if self.backend == "sagemaker":
            if self.sagemaker is None:
                raise SynePruneError("--backend sagemaker needs --role, --region and --s3-prefix")
            self.sagemaker.check()
        elif self.sagemaker is not None:
            raise SynePruneError("SageMaker options (--role, --region, --s3-prefix, ...) need --backend sagemaker")
        if self.n_workers < 1:
            raise SynePruneError(f"--n-workers must be at least 1, got {self.n_workers}")
        if self.max_trials is None and self.max_wallclock_s is None:
            raise SynePruneError("give a budget: --max-trials N and/or --max-wallclock SECONDS")
        if self.max_trials is not None and self.max_trials < 1:
            raise SynePruneError(f"--max-trials must be at least 1, got {self.max_trials}")
        if self.max_wallclock_s is not None and not self.max_wallclock_s > 0:
            raise SynePruneError(f"--max-wallclock must be positive seconds, got {self.max_wallclock_s}")
        if self.trial_timeout_s is not None and not self.trial_timeout_s > 0:
            raise SynePruneError(f"--trial-timeout must be positive seconds, got {self.trial_timeout_s}")
        if self.test_split not in TEST_SPLITS:
            raise SynePruneError(f"unknown --test-split '{self.test_split}'; choose one of {', '.join(TEST_SPLITS)}")
        if self.finetune is not None and self.test_split != "every-trial":
            raise SynePruneError("standard NAS scores every trial on the test split after each epoch: drop --test-split pareto")
        if self.fidelity_levels < 1 or self.eval_batch_size < 1:
            raise SynePruneError("--fidelity-levels and --eval-batch-size must be positive")

    @property
    def max_fidelity(self) -> int:
        """The resource of a finished trial: epochs (standard NAS), else validation chunks seen (MO-ASHA) or 1."""
        if self.finetune is not None:
            return self.finetune.epochs
        return self.fidelity_levels if self.scheduler in MULTI_FIDELITY else 1


def subnetwork_key(space, config: dict[str, Any]) -> bytes:
    """Identity of the sub-network a configuration selects: configurations that differ only in values
    that select nothing (heads of a small-space network with 0 layers) are the same sub-network."""
    mask = space.to_mask(config)
    return mask.heads.numpy().tobytes() + mask.neurons.numpy().tobytes()


class _NoRepeatScheduler(TrialScheduler):
    """Wraps a Syne Tune scheduler: never starts the same sub-network twice (finished ones included)
    and hands out at most ``budget`` suggestions, then reports the space exhausted so the Tuner waits
    for the running trials and ends with exactly that many.

    It never asks the scheduler in vain: once every sub-network of the space has been started it answers
    None at once; a scheduler that proposes only sub-networks already started is asked at most
    ``MAX_ASKS`` times per suggestion, then a new sub-network is drawn at random (from all those left, where
    the space is small enough to list). ``stats["no_new_subnetwork"]`` counts the times none was found."""

    MAX_ASKS = 10  # each ask can cost seconds (EHVI refits its GP)
    RANDOM_DRAWS = 1000  # cheap draws from the space before giving up, where it is too large to list
    MAX_LISTED = 4096  # spaces with at most this many configurations are listed to find the new sub-networks

    def __init__(self, scheduler: TrialScheduler, space, seen: set[bytes], budget: int | None) -> None:
        super().__init__(random_seed=0)
        self._scheduler, self._space, self._seen, self._budget = scheduler, space, seen, budget
        self._random = np.random.RandomState(len(seen))
        self._size = space.num_subnetworks()
        self.stats = {"suggest_s": 0.0, "suggestions": 0, "repeats_rejected": 0, "no_new_subnetwork": 0}  # the scheduler's own cost
        searcher = getattr(scheduler, "searcher", None)
        if hasattr(searcher, "is_new"):  # EHVI picks its best candidate among sub-networks not yet started
            searcher.is_new = lambda config: subnetwork_key(space, config) not in seen

    def suggest(self):
        started = time.perf_counter()
        try:
            return self._suggest()
        finally:
            self.stats["suggest_s"] += time.perf_counter() - started

    def _suggest(self):
        if self._budget is not None and self._budget <= 0:
            return None
        if len(self._seen) >= self._size:  # nothing new left: do not ask the scheduler
            self.stats["no_new_subnetwork"] += 1
            return None
        for _ in range(self.MAX_ASKS):
            suggestion = self._scheduler.suggest()
            if suggestion is None:
                self.stats["no_new_subnetwork"] += 1
                return None
            if suggestion.config is None or subnetwork_key(self._space, suggestion.config) not in self._seen:
                return self._accept(suggestion)
            self.stats["repeats_rejected"] += 1
        fresh = self._new_config()  # the scheduler keeps proposing sub-networks already started
        if fresh is None:
            self.stats["no_new_subnetwork"] += 1
            return None
        constants = {k: v for k, v in suggestion.config.items() if k not in self._space.config_space}
        suggestion.config = {**fresh, **constants}
        return self._accept(suggestion)

    def _accept(self, suggestion):
        if suggestion.config is not None:
            self._seen.add(subnetwork_key(self._space, suggestion.config))
        if self._budget is not None:
            self._budget -= 1
        self.stats["suggestions"] += 1
        return suggestion

    def _new_config(self) -> dict[str, int] | None:
        """A seeded random configuration of a sub-network not started yet, or None if none is found."""
        if self._space.num_configurations() <= self.MAX_LISTED:
            new = {}
            for config in self._space.configurations():
                new.setdefault(subnetwork_key(self._space, config), config)
            left = [c for k, c in new.items() if k not in self._seen]
            return left[self._random.randint(len(left))] if left else None
        for _ in range(self.RANDOM_DRAWS):
            config = self._space.sample(self._random)
            if subnetwork_key(self._space, config) not in self._seen:
                return config
        return None

    def on_trial_add(self, trial):
        self._scheduler.on_trial_add(trial)

    def on_trial_error(self, trial):
        self._scheduler.on_trial_error(trial)

    def on_trial_result(self, trial, result):
        if non_finite_items(result, self._scheduler.metric_names()):  # never shown to the searcher; the ledger fails the trial
            self._scheduler.on_trial_error(trial)
            return SchedulerDecision.STOP
        return self._scheduler.on_trial_result(trial, result)

    def on_trial_complete(self, trial, result):
        if non_finite_items(result, self._scheduler.metric_names()):
            return
        self._scheduler.on_trial_complete(trial, result)

    def on_trial_remove(self, trial):
        self._scheduler.on_trial_remove(trial)

    def metric_names(self):
        return self._scheduler.metric_names()

    def metric_mode(self):
        return self._scheduler.metric_mode()

    def metadata(self):
        return self._scheduler.metadata()


def trials_left(space, n_finished: int, max_trials: int | None) -> int:
    """How many trials a search (or its resumed part) may still start: what is left of ``max_trials`` (None:
    no trial budget), capped at the sub-networks of the space not tried yet (each trial is a new one)."""
    left = space.num_subnetworks() - n_finished
    return left if max_trials is None else min(max_trials - n_finished, left)


def space_notice(space, config: SearchConfig, n_trials: int) -> str | None:
    """The one line (printed, and ``notice`` in summary.json) saying that the space has fewer sub-networks than
    the budget or that all of them were evaluated; None when neither. Every trial is a distinct sub-network
    (``_NoRepeatScheduler``), so ``n_trials`` is how many of them were tried."""
    size = space.num_subnetworks()
    capped = config.max_trials is not None and config.max_trials > size
    if not capped and n_trials < size:
        return None
    cap = f" (--max-trials {config.max_trials} capped at {size})" if capped else ""
    return f"the {space.name} search space has {size} sub-networks: the search ends once every one is evaluated{cap}"


def _ledger_columns(names: list[str], config: "SearchConfig") -> list[str]:
    objectives = config.objectives
    extra = ["latency_ms"] if "latency" in objectives else []
    sizes = [o for o in ("params", "macs", "latency") if o not in objectives]
    standard = ["epoch", "train_loss", "checkpoint"] if config.mode == "standard" else []
    return ["trial_id", "status", *names, *objectives, *sizes, *extra, "test_error", FIDELITY_ATTR, *standard,
            "setup_s", "eval_s", "wall_time_s", "failure_reason", "part", "finished_s"]


def _prepare_output(output: Path, config: SearchConfig, resume: bool, overwrite: bool, check_only: bool = False) -> None:
    """Refuse what would lose data; then (unless ``check_only``) create or empty the directory."""
    if resume and overwrite:
        raise SynePruneError("--resume and --overwrite exclude each other; pick one")
    if resume:
        if not (output / SETTINGS_FILE).is_file():
            raise SynePruneError(f"nothing to resume in '{output}' (no {SETTINGS_FILE}); drop --resume to start a search")
        saved = json.loads((output / SETTINGS_FILE).read_text())["settings"]
        saved.setdefault("test_split", "every-trial")  # searches from before the option scored every trial
        mine = json.loads(json.dumps(_resumable(config)))
        changed = sorted(k for k in mine if saved.get(k) != mine[k])
        if changed:
            raise SynePruneError(f"--resume with other settings than the interrupted search ({', '.join(changed)}); use the same ones")
        return
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        if not overwrite:
            raise SynePruneError(f"output '{output}' already exists; pass --resume to continue it, --overwrite to replace it, or choose another --output")
        if not check_only:
            shutil.rmtree(output)
    if not check_only:
        output.mkdir(parents=True, exist_ok=True)


def _resumable(config: SearchConfig) -> dict[str, Any]:
    values = asdict(config)
    for key in ("output", "max_trials", "max_wallclock_s", "n_workers", "backend", "trial_timeout_s", "sagemaker"):  # free on resume
        values.pop(key)
    return values


def run_search(config: SearchConfig, resume: bool = False, overwrite: bool = False, progress: bool = True,
               entry_point: str | None = None) -> dict[str, Any]:
    """Run (or resume) a search; returns the summary also written to ``summary.json``."""
    from dataclasses import replace

    from transformers import AutoConfig

    from syne_prune.models import get_architecture
    from syne_prune.search_spaces import get_search_space
    from syne_prune.supernet import verify_checkpoint
    from syne_prune.supernet.checkpoint import check_supernet_settings

    config.check()
    if config.mode == "standard":
        return _run_standard(config, resume, overwrite, progress, entry_point)
    supernet = Path(config.supernet).resolve()
    metadata = verify_checkpoint(supernet)
    model_config = AutoConfig.from_pretrained(supernet)
    space = get_search_space(metadata["search_space"], get_architecture(model_config).shape(model_config))
    check_supernet_settings(supernet, metadata, model_config)
    data_dir = config.data_dir or metadata["hyperparameters"].get("data_dir")
    # the trials' own splits (a missing or malformed file would fail every trial or worker: it fails here, now)
    validation_examples = len(load_search_data(metadata, data_dir, config.max_eval_examples).validation)
    if config.scheduler in MULTI_FIDELITY and fidelity_levels(config.fidelity_levels, validation_examples) < config.fidelity_levels:
        print(f"--fidelity-levels {config.fidelity_levels} capped at {validation_examples}: one level per validation example "
              f"at most", file=sys.stderr, flush=True)  # the trials report that many, and the search must expect as many
        config = replace(config, fidelity_levels=fidelity_levels(config.fidelity_levels, validation_examples))
    settings = TrialSettings(
        supernet=str(supernet), objectives=tuple(config.objectives), fidelity_levels=config.max_fidelity,
        data_dir=str(Path(data_dir).resolve()) if data_dir else None, eval_batch_size=config.eval_batch_size,
        max_eval_examples=config.max_eval_examples, test_every_trial=config.test_split == "every-trial",
        latency_seq_len=latency_seq_len(model_config),
    )
    return _search(config, space, metadata, settings.as_constants(), settings, resume, overwrite, progress, entry_point)


def latency_seq_len(model_config) -> int:
    """Tokens per sequence the latency objective is timed on (weight-sharing): 128, or fewer when the model
    has fewer usable positions (``syne_prune.models.usable_positions``)."""
    from syne_prune.models import usable_positions

    return min(TrialSettings.latency_seq_len, usable_positions(model_config) or TrialSettings.latency_seq_len)


def _run_standard(config: "SearchConfig", resume: bool, overwrite: bool, progress: bool, entry_point: str | None) -> dict[str, Any]:
    """Standard NAS: the pre-trained model and task replace the super-network."""
    from dataclasses import replace

    from syne_prune.data import get_task, load_task
    from syne_prune.export import load_model_config
    from syne_prune.models import check_model_settings, get_architecture
    from syne_prune.models.local_weights import resolve_model
    from syne_prune.search_spaces import get_search_space

    finetune = config.finetune
    model_config = load_model_config(finetune.model)  # a missing model or an unknown architecture fails here
    space = get_search_space(finetune.search_space, get_architecture(model_config).shape(model_config))
    load_task(finetune.task, finetune.data_dir, finetune.validation_fraction, finetune.seed, max_train_examples=1, max_eval_examples=1)
    source = str(resolve_model(finetune.model))
    check_model_settings(model_config, get_task(finetune.task), _tokenizer(source, finetune.model), finetune.max_length,
                         model_name=f"model '{finetune.model}'")
    require_finite_model_dir(source, f"model '{finetune.model}'")
    finetune = replace(finetune, model=str(Path(source).resolve()) if Path(source).exists() else finetune.model,
                       data_dir=str(Path(finetune.data_dir).resolve()) if finetune.data_dir else None)
    task = get_task(finetune.task)
    metadata = {"task": finetune.task, "metric": task.metric_name, "model": config.finetune.model, "metrics": None}
    return _search(config, space, metadata, finetune.as_constants(tuple(config.objectives)), None, resume, overwrite, progress, entry_point)


def _tokenizer(source: str, name: str):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError, TypeError):
        raise SynePruneError(f"model '{name}' has no tokenizer; save one next to the model (tokenizer.save_pretrained)") from None


def _search(config: "SearchConfig", space, metadata: dict[str, Any], constants: dict[str, Any], settings: TrialSettings | None,
            resume: bool, overwrite: bool, progress: bool, entry_point: str | None) -> dict[str, Any]:
    """The part both modes share: output folder, ledger, scheduler (with the finished trials replayed), Tuner."""
    output = Path(config.output)
    _prepare_output(output, config, resume, overwrite, check_only=True)
    backend = _sagemaker_backend(config, constants, output) if config.backend == "sagemaker" else None  # checks S3 first
    _prepare_output(output, config, resume, overwrite)
    (output / SETTINGS_FILE).write_text(json.dumps({"settings": _resumable(config), "mode": config.mode,
                                                    "supernet": str(Path(config.supernet).resolve()) if config.supernet else None,
                                                    "search_space": space.name, "task": metadata["task"]}, indent=2) + "\n")
    with third_party_output_to(output / LOG_FILE):  # the console shows progress and our messages only
        return _search_rest(output, config, space, metadata, constants, settings, progress, entry_point, backend)


def _search_rest(output: Path, config: "SearchConfig", space, metadata: dict[str, Any], constants: dict[str, Any],
                 settings: TrialSettings | None, progress: bool, entry_point: str | None, backend) -> dict[str, Any]:
    """The remaining budget (after a resume: what is left) as a new part, then the results."""
    names = list(space.config_space)
    ledger = R.TrialLedger(output / R.TRIALS_FILE, _ledger_columns(names, config))
    finished = ledger.read()
    parts = R.read_parts(output / "syne-tune", finished)
    remaining = trials_left(space, len(finished), config.max_trials)
    if config.max_trials is not None and remaining < config.max_trials - len(finished):  # say so once, up front
        print(space_notice(space, config, len(finished)), file=sys.stderr, flush=True)
    wallclock_left = None if config.max_wallclock_s is None else config.max_wallclock_s - R.search_seconds(parts)
    if (remaining is not None and remaining <= 0) or (wallclock_left is not None and wallclock_left <= 0):
        return finalize(output, config, space, metadata, settings, progress)

    part = 1 + max((p["part"] for p in parts), default=-1)
    scheduler = make_scheduler(config.scheduler, space, list(config.objectives), config.seed + part,
                               constants, config.max_fidelity)
    seen = _replay(scheduler, finished, space, config)
    wrapped = _NoRepeatScheduler(scheduler, space, seen, remaining)
    return _tune(output, config, space, metadata, wrapped, ledger, names, settings, wallclock_left, remaining,
                 part, int(finished["trial_id"].max()) + 1 if len(finished) else 0, progress, entry_point, backend)


def _sagemaker_backend(config: "SearchConfig", constants: dict[str, Any], output: Path):
    """A prepared SageMaker backend: S3 writable, source and channels uploaded (each once), image known."""
    from syne_prune.search.sagemaker import SageMakerBackend

    channel_of = {"supernet": "supernet", "model": "model", "data_dir": "data"}
    channels = {channel_of[key]: str(value) for key, value in constants.items()
                if key in channel_of and value and Path(str(value)).is_dir()}
    import uuid

    if config.sagemaker.instance_count != 1:
        raise SynePruneError("--instance-count above 1: a trial is not distributed, every host would run it; use --n-workers for parallel trials")
    name = f"sp-{re.sub(r'[^a-zA-Z0-9-]', '-', Path(output).resolve().name)[:24]}-{uuid.uuid4().hex[:10]}"  # unique per account and region
    backend = SageMakerBackend(config.sagemaker, "finetune" if config.mode == "standard" else "trial", channels,
                               checkpointing=config.mode == "standard", job_prefix=name)
    backend.prepare()
    return backend


def _replay(scheduler, finished, space, config: SearchConfig) -> set[bytes]:
    """Tell a fresh scheduler the finished trials (negative ids, no clash with new ones)."""
    from syne_tune.backend.trial_status import Trial

    names = list(space.config_space)
    seen = set()
    for index, row in enumerate(finished.to_dict("records")):
        seen.add(subnetwork_key(space, {n: int(row[n]) for n in names}))
        if row["status"] != "completed" or non_finite_items(row, config.objectives):
            continue
        trial = Trial(trial_id=-(index + 1), config={n: int(row[n]) for n in names}, creation_time=datetime.now())
        result = {o: float(row[o]) for o in config.objectives} | {FIDELITY_ATTR: config.max_fidelity}
        scheduler.on_trial_add(trial)
        if config.scheduler in MULTI_FIDELITY:
            scheduler.on_trial_result(trial, result)
        scheduler.on_trial_complete(trial, result)
    return seen


def _tune(output, config, space, metadata, scheduler, ledger, names, settings, wallclock_left, remaining, part,
          first_trial_id, progress, entry_point, backend=None) -> dict[str, Any]:
    from syne_tune import StoppingCriterion
    from syne_tune.results_callback import StoreResultsCallback
    from tqdm.auto import tqdm

    from syne_prune.search import finetune as finetune_module
    from syne_prune.search import trial as trial_module
    from syne_prune.search.pool import PoolBackend
    from syne_prune.search.sagemaker import wait_between_polls

    experiments = output / "syne-tune"
    previous = os.environ.get("SYNETUNE_FOLDER")
    os.environ["SYNETUNE_FOLDER"] = str(experiments.resolve())
    if backend is not None:  # sagemaker, prepared by _search
        pass
    elif config.backend == "pool":
        backend = PoolBackend(settings, config.n_workers, experiments / f"part-{part}" / "pool",
                              entry_point=trial_module.__file__, trial_timeout_s=config.trial_timeout_s)
    else:
        default = finetune_module.__file__ if config.mode == "standard" else trial_module.__file__
        backend = FixedLocalBackend(entry_point=entry_point or default)
    bar = None
    clock = R.PartClock(experiments / f"part-{part}", first_trial_id, scheduler.stats)
    recorder = _LedgerCallback(ledger, backend, names, config, first_trial_id, bar, part, clock)
    tuner = _Tuner(
        trial_backend=backend,
        scheduler=scheduler,
        stop_criterion=StoppingCriterion(max_wallclock_time=wallclock_left),
        n_workers=config.n_workers,
        sleep_time=wait_between_polls() if config.backend == "sagemaker" else 0.2,
        max_failures=10**9,  # failed trials are recorded; the search goes on
        start_jobs_without_delay=config.backend != "sagemaker",  # a stopping job still holds its instance
        tuner_name=f"part-{part}",
        suffix_tuner_name=False,
        wait_trial_completion_when_stopping=wallclock_left is None,
        callbacks=[StoreResultsCallback(), recorder],
        results_update_interval=5.0,
        print_update_interval=10**9,
        save_tuner=False,
        output_logger=QuietTunerLogger(),
    )
    clock.start()
    try:
        if isinstance(backend, PoolBackend):
            backend.start(progress)
        bar = tqdm(total=remaining if config.max_trials is not None else None, desc=f"search [{config.scheduler}]", unit="trial", disable=not progress)
        recorder.bar = bar
        with no_best_metric_table():
            tuner.run()
    finally:
        if bar is not None:
            bar.close()
        if isinstance(backend, PoolBackend):
            backend.close()
        clock.stop()
        if previous is None:
            os.environ.pop("SYNETUNE_FOLDER", None)
        else:
            os.environ["SYNETUNE_FOLDER"] = previous
    return finalize(output, config, space, metadata, settings, progress)


class _Tuner(Tuner):
    """Syne Tune's Tuner, sleeping on the backend's own ``wait`` where it has one (the pool: until a worker
    reports), instead of always the full ``sleep_time``."""

    def _sleep(self) -> None:
        wait = getattr(self.trial_backend, "wait", None)
        if wait is None:
            return super()._sleep()
        wait(self.sleep_time)
        for callback in self.callbacks:
            callback.on_tuning_sleep(self.sleep_time)


class _LedgerCallback(TunerCallback):
    """Writes one trials.csv row per trial the moment it finishes (completed, stopped or failed), with its
    ``part`` and ``finished_s`` (seconds from the part's start, by its ``R.PartClock``), and has the clock
    record the part's time at once (a kill right after loses none of it)."""

    def __init__(self, ledger, backend, names, config: SearchConfig, first_trial_id: int, bar, part: int,
                 clock: R.PartClock) -> None:
        self.ledger, self.backend, self.names, self.config = ledger, backend, names, config
        self.output = Path(config.output)
        self.offset, self.bar = first_trial_id, bar
        self.part, self.clock = part, clock
        self.last: dict[int, dict] = {}
        self.written: set[int] = set()

    def _write(self, trial, status: str, result: dict | None, reason: str = "") -> None:
        if trial.trial_id in self.written:
            return
        self.written.add(trial.trial_id)
        result = result or {}
        if status in ("completed", "stopped") and result.get(FIDELITY_ATTR, 0) >= self.config.max_fidelity:
            status = "completed"  # MO-ASHA stops trials at the top rung too
        bad = non_finite_items(result, self.config.objectives)
        if bad:  # reported by an entry point that does not check (the trial code refuses to report these)
            status, reason = "failed", f"non-finite objective(s) {', '.join(bad)}"
        row = {"trial_id": self.offset + trial.trial_id, "status": status,
               **{n: trial.config[n] for n in self.names}, **result,
               "wall_time_s": (datetime.now() - trial.creation_time).total_seconds(), "failure_reason": reason,
               "part": self.part, "finished_s": self.clock.elapsed()}
        if self.config.mode == "standard":  # where the trial's fine-tuned weights are (export reads them)
            if hasattr(self.backend, "checkpoint_uri"):
                row["checkpoint"] = self.backend.checkpoint_uri(trial.trial_id)
            else:
                row["checkpoint"] = os.path.relpath(self.backend.checkpoint_trial_path(trial.trial_id), self.output)
        self.ledger.append(row)
        self.clock.beat()
        if self.bar is not None:
            self.bar.update(1)

    def on_trial_result(self, trial, status, result, decision) -> None:
        self.last[trial.trial_id] = result
        if decision == SchedulerDecision.STOP:
            self._write(trial, "stopped", result)

    def on_trial_complete(self, trial, result) -> None:
        self._write(trial, "completed", result)

    def on_fetch_status_results(self, trial_status_dict, new_results) -> None:
        for trial_id, result in new_results:
            self.last[trial_id] = result
        for trial_id, (trial, status) in trial_status_dict.items():
            if status in (Status.failed, Status.stopped) and trial_id not in self.written:
                self._write(trial, "failed" if status == Status.failed else "stopped", self.last.get(trial_id), self._reason(trial_id))

    def _reason(self, trial_id: int) -> str:
        try:
            lines = [line.strip() for line in self.backend.stderr(trial_id) if line.strip()]
        except OSError:
            return "unknown (no std.err)"
        marked = [line[len(FAILURE_PREFIX):] for line in lines if line.startswith(FAILURE_PREFIX)]
        return (marked or lines or ["unknown"])[-1][:500]


def _evaluator_once(settings: TrialSettings):
    """A function returning the trials' own ``Evaluator`` for ``settings`` (the search's splits), built on its
    first call only (it loads the super-network). Without the latency objective: nothing scored after the
    search needs its reference timing."""
    from dataclasses import replace

    made: list = []

    def evaluator():
        if not made:
            from syne_prune.search.trial import Evaluator

            made.append(Evaluator(replace(settings, objectives=tuple(o for o in settings.objectives if o != "latency"))))
        return made[0]

    return evaluator


def score_pareto_on_test(output: Path, config: SearchConfig, settings: TrialSettings, progress: bool = True,
                         evaluator=None) -> int:
    """With ``--test-split pareto``: the test-split error of each Pareto member not scored yet, computed here
    with the trial code (the super-network loaded once) and appended to test_errors.csv as it arrives.
    Returns how many were scored. The search never uses the test split, so only the networks a user
    would pick are scored; every trial is with ``--test-split every-trial``, at the cost of a second pass.
    ``evaluator``: a function returning the Evaluator to use (``_evaluator_once``), else one is built."""
    from tqdm.auto import tqdm

    trials = R.TrialLedger(output / R.TRIALS_FILE, []).read()
    front = R.pareto_set(trials, list(config.objectives), config.max_fidelity)
    todo = front[front["test_error"].isna()] if len(front) else front
    if todo.empty:
        return 0
    evaluator = (evaluator or _evaluator_once(settings))()
    names = list(evaluator.space.config_space)
    for _, row in tqdm(list(todo.iterrows()), desc="test split [Pareto set]", unit="network", disable=not progress):
        config_values = evaluator.space.validate({name: row[name] for name in names})
        R.append_test_error(output, int(row["trial_id"]), evaluator.test_error(config_values))
    return len(todo)


def finalize(output: Path, config: SearchConfig, space, metadata: dict[str, Any], settings: TrialSettings | None = None,
             progress: bool = True) -> dict[str, Any]:
    """Every output of a search from its one ledger, trials.csv (also after a resume, and whatever ended
    each part: a part killed with SIGKILL included): pareto.csv, pareto.png, hypervolume.csv, summary.json,
    the Syne Tune results of each part (completed from the ledger), and first, with ``--test-split pareto``,
    the Pareto set's test errors."""
    import platform

    import syne_tune
    import torch
    import transformers

    import syne_prune

    evaluator = _evaluator_once(settings) if settings is not None else None
    if settings is not None and config.test_split == "pareto":
        score_pareto_on_test(output, config, settings, progress, evaluator)
    trials = R.TrialLedger(output / R.TRIALS_FILE, []).read()
    objectives = list(config.objectives)
    front = R.pareto_set(trials, objectives, config.max_fidelity)
    front.to_csv(output / R.PARETO_FILE, index=False)
    metric = metadata["metric"]
    unpruned = unpruned_errors(trials, space, config, evaluator)
    R.plot_pareto(trials, front, unpruned["validation_error"], output / R.PLOT_FILE,
                  f"{metadata['task']} · {space.name} space · {config.scheduler} · {len(trials)} trials",
                  unpruned_label="unpruned (largest configuration)")
    names = list(space.config_space)
    parts = R.read_parts(output / "syne-tune", trials)
    R.complete_experiment_results(output / "syne-tune", trials, parts, names,
                                  [c for c in trials.columns if c not in set(names) | _NOT_METRICS])
    over_time = R.hypervolume_over_time(trials, parts, objectives, config.max_fidelity)
    over_time.to_csv(output / R.HYPERVOLUME_FILE, index=False)
    cost = _scheduler_cost(parts)
    notice = space_notice(space, config, len(trials))
    if notice is None and cost["no_new_subnetwork"]:
        notice = f"the {config.scheduler} scheduler proposed no new sub-network after {len(trials)} trials: the search stopped early"
    if notice is not None and not (config.max_trials is not None and config.max_trials > space.num_subnetworks()):
        print(notice, file=sys.stderr, flush=True)  # a cap was announced when the search started
    summary = {
        "mode": config.mode,
        "scheduler": config.scheduler,
        "seed": config.seed,
        "objectives": objectives,
        "search_space": space.name,
        "search_space_subnetworks": space.num_subnetworks(),
        "notice": notice,
        "task": metadata["task"],
        "metric": metric,
        "supernet": str(Path(config.supernet).resolve()) if config.supernet else None,
        "model": metadata.get("model"),
        "hypervolume": R.hypervolume(front[objectives].to_numpy(dtype=float)) if len(front) else 0.0,
        "hypervolume_reference_point": [R.REFERENCE_POINT] * len(objectives),
        "hypervolume_normalisation": "none: error = 1 - metric; params, macs, latency are ratios to the unpruned model",
        "trials": {status: int((trials["status"] == status).sum()) for status in ("completed", "stopped", "failed")},
        "pareto_size": int(len(front)),
        "fidelity_levels": config.max_fidelity,
        "wallclock_s": R.search_seconds(parts),
        "parts": [{"part": p["part"], "seconds": p["seconds"]} for p in parts],
        "scheduler_cost": cost,
        "unpruned": unpruned,
        "hypervolume_over_time": f"{R.HYPERVOLUME_FILE}: hypervolume of the full-fidelity trials of {R.TRIALS_FILE} finished by each wall-clock second of the search",
        "versions": {"syne_prune": syne_prune.__version__, "syne_tune": syne_tune.__version__, "torch": torch.__version__,
                     "transformers": transformers.__version__, "python": platform.python_version()},
    }
    R.write_summary(output / R.SUMMARY_FILE, summary)
    return summary


_NOT_METRICS = {"trial_id", "status", "wall_time_s", "failure_reason", "part", "finished_s", "checkpoint"}


def _scheduler_cost(parts: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds the Tuner spent in the scheduler's suggest (all parts of a resumed search, killed ones up to
    their last heartbeat), how often a suggestion was turned down as a sub-network already tried, and how
    often no new sub-network was left or found."""
    total = {"suggest_s": 0.0, "suggestions": 0, "repeats_rejected": 0, "no_new_subnetwork": 0}
    for part in parts:
        for key, value in part["scheduler"].items():
            total[key] = total.get(key, 0) + value
    return total


def unpruned_errors(trials: pd.DataFrame, space, config: SearchConfig, evaluator=None) -> dict[str, Any]:
    """The unpruned network's validation and test errors, on this search's own splits, from one place: the
    trial of the largest configuration once it completed at full fidelity (weight-sharing: the super-network
    with nothing pruned, scored by the trials' Evaluator; standard NAS: the full model, fine-tuned). Without
    such a trial (budget spent, failed, stopped early by MO-ASHA), a weight-sharing search scores the largest
    configuration here with the same Evaluator (``evaluator``: a function returning it, ``_evaluator_once``);
    so does it a test error the trial lacks (``--test-split pareto`` and not on the Pareto front).
    Returns ``{"validation_error", "test_error", "trial_id"}`` (None where unknown; ``trial_id`` None when
    scored here)."""
    largest = space.largest()
    names = list(space.config_space)
    done = trials[(trials["status"] == "completed") & (trials[FIDELITY_ATTR] >= config.max_fidelity)] if len(trials) else trials
    rows = done[(done[names] == pd.Series(largest)).all(axis=1)] if len(done) else done
    if len(rows):
        row = rows.iloc[0]
        test = row["test_error"]
        if pd.isna(test) and evaluator is not None:
            test = evaluator().test_error(largest)
        return {"validation_error": float(row["error"]), "test_error": None if pd.isna(test) else float(test),
                "trial_id": int(row["trial_id"])}
    if evaluator is None:
        return {"validation_error": None, "test_error": None, "trial_id": None}
    validation = evaluator().evaluate(largest, lambda result: None)["error"]
    return {"validation_error": float(validation), "test_error": float(evaluator().test_error(largest)), "trial_id": None}


def choose_trial(search_dir: str | Path, trial_id: int | None = None, max_params: float | None = None) -> dict[str, Any]:
    """A finished trial of a search: by id, or the Pareto member with the best validation error whose
    parameter ratio is at most ``max_params``."""
    search_dir = Path(search_dir)
    if not (search_dir / SETTINGS_FILE).is_file() or not (search_dir / R.TRIALS_FILE).is_file():
        raise SynePruneError(f"'{search_dir}' is not a search directory (no {SETTINGS_FILE} / {R.TRIALS_FILE}); give the --output of a search")
    if (trial_id is None) == (max_params is None):
        raise SynePruneError("give exactly one of --trial ID or --max-params RATIO")
    trials = R.read_trials(search_dir / R.TRIALS_FILE)
    if trial_id is not None:
        rows = trials[trials["trial_id"] == trial_id]
        if rows.empty:
            raise SynePruneError(f"no trial {trial_id} in {search_dir / R.TRIALS_FILE}; trial ids run from 0 to {int(trials['trial_id'].max()) if len(trials) else -1}")
        row = rows.iloc[0]
        if row["status"] != "completed":
            raise SynePruneError(f"trial {trial_id} did not complete (status {row['status']}); choose a completed trial")
        return row.to_dict()
    front = pd.read_csv(search_dir / R.PARETO_FILE) if (search_dir / R.PARETO_FILE).is_file() else trials.iloc[0:0]
    eligible = front[front["params"] <= max_params]
    if eligible.empty:
        smallest = f"{front['params'].min():.3f}" if len(front) else "none (no completed trial)"
        raise SynePruneError(f"no Pareto sub-network has a parameter ratio <= {max_params}; the smallest has {smallest}")
    return eligible.sort_values(["error", "params"]).iloc[0].to_dict()


def export_from_search(search_dir: str | Path, output: str | Path, trial_id: int | None = None, max_params: float | None = None,
                       onnx: bool = False, overwrite: bool = False) -> tuple[Path, dict[str, Any]]:
    """Export the chosen sub-network of a search (from its super-network, or the trial's fine-tuned weights in
    standard NAS); returns (directory, trial row)."""
    from syne_prune.export import export_subnetwork, task_record
    from syne_prune.models import get_architecture
    from syne_prune.search_spaces import get_search_space
    from syne_prune.supernet import load_supernet

    row = choose_trial(search_dir, trial_id, max_params)
    settings = json.loads((Path(search_dir) / SETTINGS_FILE).read_text())
    output = Path(output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())) and not overwrite:
        raise SynePruneError(f"output '{output}' already exists; choose a new --output or pass --overwrite")
    trained = None
    if settings.get("mode") == "standard":  # the trial's own fine-tuned weights
        from syne_prune.search.finetune import FineTuneSettings, load_pretrained, load_trained

        finetune = FineTuneSettings(**settings["settings"]["finetune"])
        model, tokenizer, space = load_pretrained(finetune)
        config = space.validate({k: row[k] for k in space.config_space})
        checkpoint = str(row["checkpoint"])
        trained = load_trained(model, space, config, checkpoint if checkpoint.startswith("s3://") else Path(search_dir) / checkpoint)
        trained_on = task_record(settings["settings"]["finetune"])
    else:
        supernet = load_supernet(settings["supernet"])
        model, tokenizer = supernet.model, supernet.tokenizer
        space = get_search_space(settings["search_space"], get_architecture(model.config).shape(model.config))
        config = space.validate({k: row[k] for k in space.config_space})
        trained_on = {**task_record(supernet.metadata["hyperparameters"]), "supernet": str(Path(settings["supernet"]).resolve())}
    metrics = {k: row[k] for k in ("error", "test_error", "params", "macs", "epoch") if k in row and pd.notna(row[k])}
    out = export_subnetwork(model, space.to_mask(config), output, tokenizer=tokenizer, onnx=onnx, overwrite=overwrite,
                            metadata={"search_space": space.name, "config": config, "trial_id": int(row["trial_id"]),
                                      "search_dir": str(Path(search_dir).resolve()), "search_metrics": metrics,
                                      **trained_on},
                            subnetwork=trained)
    return out, row
