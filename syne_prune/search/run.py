"""Multi-objective search: Syne Tune's Tuner over sub-network configurations.

Each trial is one configuration (its hyperparameters are the mask). What a trial does is its kind
(``kinds/``: weight-sharing evaluates a sub-network of one super-network, standard NAS fine-tunes its own);
where it runs is the backend (``backends/``: pool, local, sagemaker). This module only orchestrates:
config -> trial kind (checked, prepared) -> scheduler -> backend -> Tuner -> outputs (``outputs.py``).

Results go to ``trials.csv`` as trials finish (``callbacks.py``); ``--resume`` replays the finished trials
into a fresh scheduler (``scheduling.py``: it neither loses nor repeats them) and runs the remaining budget
as a new part of the Syne Tune experiment (``syne-tune/part-K``). Choosing and exporting a trial:
``choose.py``.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from syne_tune import StoppingCriterion
from syne_tune.results_callback import StoreResultsCallback
from tqdm.auto import tqdm

from syne_prune.artifacts import TRIALS_FILE, TrialLedger
from syne_prune.files import output_lock
from syne_prune.search import results as R
from syne_prune.search.backends import SearchBackend, get_backend
from syne_prune.search.callbacks import LedgerCallback, SearchTuner
from syne_prune.search.config import SearchConfig
from syne_prune.search.console import LOG_FILE, third_party_output_to
from syne_prune.search.in_order import InOrderScheduler
from syne_prune.search.kinds import PreparedSearch
from syne_prune.search.outputs import check_recorded_data, check_resumed_compute, finalize, ledger_columns, prepare_output, space_notice, write_settings
from syne_prune.search.schedulers import make_scheduler
from syne_prune.search.scheduling import NoRepeatScheduler, replay, trials_left
from syne_prune.search.syne_tune_fixes import QuietTunerLogger, no_best_metric_table


def run_search(config: SearchConfig, resume: bool = False, overwrite: bool = False, progress: bool = True,
               entry_point: str | None = None) -> dict[str, Any]:
    """Run (or resume) a search; returns the summary also written to ``summary.json``. ``entry_point``: a
    script each trial runs instead of its kind's own (local backend). Raises SynePruneError on bad input
    (a model, super-network or data that cannot be loaded included), before the output folder is touched; when
    another process runs a search in the same folder (``files.output_lock``, held until this one ends: a second
    search would duplicate trial ids); and, naming the path, when a write fails (the trials finished so far stay
    in trials.csv, and ``resume`` continues)."""
    config.check()
    output = Path(config.output)
    if resume:
        check_recorded_data(output)  # the user's files, before they are read again
    prepared = config.kind.prepare(config)
    prepare_output(output, prepared.config, resume, overwrite, check_only=True)
    compute = get_backend(config.backend).compute_record()
    if resume:
        check_resumed_compute(output, compute, config.objectives)
    backend = get_backend(config.backend)(prepared, output, entry_point)
    backend.prepare()  # e.g. S3 checked and uploads done before the output folder is touched
    with output_lock(output, "search"):
        prepare_output(output, prepared.config, resume, overwrite)  # again, now that no other search can change it
        write_settings(output, prepared, compute)
        with third_party_output_to(output / LOG_FILE):  # the console shows progress and our messages only
            return _run_part(output, prepared, backend, progress)


def _run_part(output: Path, prepared: PreparedSearch, backend: SearchBackend, progress: bool) -> dict[str, Any]:
    """The remaining budget (after a resume: what is left) as a new part, then the results."""
    config, space = prepared.config, prepared.space
    ledger = TrialLedger(output / TRIALS_FILE, ledger_columns(list(space.config_space), config))
    finished = ledger.read()
    parts = R.read_parts(output / "syne-tune", finished)
    remaining = trials_left(space, len(finished), config.max_trials)
    if config.max_trials is not None and remaining < config.max_trials - len(finished):  # say so once, up front
        print(space_notice(space, config, len(finished)), file=sys.stderr, flush=True)
    wallclock_left = None if config.max_wallclock_s is None else config.max_wallclock_s - R.search_seconds(parts)
    if (remaining is not None and remaining <= 0) or (wallclock_left is not None and wallclock_left <= 0):
        return finalize(output, prepared, progress)
    part = 1 + max((p["part"] for p in parts), default=-1)
    scheduler = make_scheduler(config.scheduler, space, list(config.objectives), config.seed + part,
                               prepared.constants, config.max_fidelity)
    seen = replay(scheduler, finished, space, config)
    if config.reproducible:  # results reach the scheduler in trial order, between synchronous batches
        scheduler = InOrderScheduler(scheduler)
    wrapped = NoRepeatScheduler(scheduler, space, seen, remaining)
    first_trial_id = int(finished["trial_id"].max()) + 1 if len(finished) else 0
    _tune(output, prepared, backend, wrapped, ledger, wallclock_left, remaining, part, first_trial_id, progress)
    return finalize(output, prepared, progress)


def _tune(output: Path, prepared: PreparedSearch, backend: SearchBackend, scheduler: NoRepeatScheduler, ledger: TrialLedger,
          wallclock_left: float | None, remaining: int, part: int, first_trial_id: int, progress: bool) -> None:
    """Run the Tuner for one part of the search (``syne-tune/part-K``), the backend started around it."""
    config = prepared.config
    experiments = output / "syne-tune"
    previous = os.environ.get("SYNETUNE_FOLDER")
    os.environ["SYNETUNE_FOLDER"] = str(experiments.resolve())
    trial_backend = backend.syne_tune_backend(experiments / f"part-{part}")
    bar = None
    clock = R.PartClock(experiments / f"part-{part}", first_trial_id, scheduler.stats)
    recorder = LedgerCallback(ledger, backend, list(prepared.space.config_space), config, first_trial_id, bar, part, clock)
    tuner = SearchTuner(
        backend,
        trial_backend=trial_backend,
        scheduler=scheduler,
        stop_criterion=StoppingCriterion(max_wallclock_time=wallclock_left),
        n_workers=config.n_workers,
        asynchronous_scheduling=not config.reproducible,  # reproducible: a new batch once every worker is free
        sleep_time=backend.sleep_time,
        max_failures=10**9,  # failed trials are recorded; the search goes on
        start_jobs_without_delay=backend.start_jobs_without_delay,
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
        backend.start(progress)
        bar = tqdm(total=remaining if config.max_trials is not None else None, desc=f"search [{config.scheduler}]", unit="trial", disable=not progress)
        recorder.bar = bar
        with no_best_metric_table():
            tuner.run()
    finally:
        if bar is not None:
            bar.close()
        backend.close()
        clock.stop()
        if previous is None:
            os.environ.pop("SYNETUNE_FOLDER", None)
        else:
            os.environ["SYNETUNE_FOLDER"] = previous
