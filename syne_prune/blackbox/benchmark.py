"""``syne-prune benchmark``: every scheduler × seed replayed on one blackbox, then compared (report.py).

Output directory::

    benchmark.json                 the settings and the blackbox's identity (a re-run with them continues)
    surrogate.csv                  held-out error of each surrogate candidate on each target (surrogate.py)
    runs/<scheduler>/seed-<k>.csv  the trials of one replay (written when it ends; a re-run skips it)
    runs/<scheduler>/seed-<k>.json its real duration in seconds
    syne-tune/<scheduler>-seed-<k>/ Syne Tune's own results of that replay
    hypervolume_over_time.csv, hypervolume_over_trials.csv, rank_over_time.csv, final.csv,
    pareto_sets.csv, report.md, hypervolume.png, summary.json   (report.py)

Seed k is the scheduler's ``random_seed`` (as ``syne-prune search --seed k``); seeds 0..n-1 are run.
The pending replays run in ``jobs`` worker processes at once (EHVI's first: longest first), each with one
torch thread, so the files do not depend on ``jobs``; ``jobs`` is no setting of the output (a re-run
with another value continues). A failed replay cancels those not started; the running ones finish and are
kept; then its error is raised.
"""
from __future__ import annotations

import json
import multiprocessing
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from syne_prune.artifacts import SUMMARY_FILE, write_json
from syne_prune.blackbox import format as F
from syne_prune.blackbox import report
from syne_prune.blackbox.simulate import replay
from syne_prune.blackbox.surrogate import SURROGATES, Surrogate, choose, held_out_errors
from syne_prune.cores import usable_cores
from syne_prune.data import task_name
from syne_prune.errors import SynePruneError
from syne_prune.files import holds_content
from syne_prune.search import MULTI_FIDELITY, SCHEDULERS

SETTINGS_FILE = "benchmark.json"
NOT_SETTINGS = ("output", "supernet", "blackbox", "jobs")  # config fields that do not change the results
SLOW_SCHEDULERS = ("ehvi",)  # replayed first: EHVI replays take most of the time, longest first lowers the makespan


@dataclass
class BenchmarkConfig:
    """Replay ``schedulers`` × ``seeds`` on the blackbox directory ``blackbox``; write to ``output``."""

    blackbox: str
    output: str
    schedulers: tuple[str, ...] = field(default_factory=lambda: tuple(SCHEDULERS))  # every registered one
    seeds: int = 10
    max_trials: int | None = None
    max_wallclock_s: float | None = None  # simulated seconds
    n_workers: int = 1
    surrogate: str = "auto"
    objectives: tuple[str, ...] = ("error", "params")
    supernet: str | None = None  # if given, the blackbox must have been recorded from it
    jobs: int = field(default_factory=usable_cores)  # replays at once, in worker processes (1: in this process)

    def check(self) -> None:
        unknown = [s for s in self.schedulers if s not in SCHEDULERS]
        if unknown or not self.schedulers or len(set(self.schedulers)) != len(self.schedulers):
            raise SynePruneError(f"--schedulers: give distinct names from {', '.join(SCHEDULERS)} (got {','.join(self.schedulers)})")
        if self.surrogate not in SURROGATES:
            raise SynePruneError(f"unknown --surrogate '{self.surrogate}'; choose one of {', '.join(SURROGATES)}")
        if self.seeds < 1 or self.n_workers < 1 or self.jobs < 1:
            raise SynePruneError(f"--seeds, --n-workers and --jobs must be at least 1 (got {self.seeds}, {self.n_workers}, {self.jobs})")
        if self.max_trials is None and self.max_wallclock_s is None:
            raise SynePruneError("give a budget: --max-trials N and/or --max-wallclock SIMULATED_SECONDS")
        if (self.max_trials is not None and self.max_trials < 1) or (self.max_wallclock_s is not None and not self.max_wallclock_s > 0):
            raise SynePruneError("--max-trials must be at least 1 and --max-wallclock positive")
        if self.objectives[:1] != ("error",) or len(self.objectives) < 2 or not set(self.objectives[1:]) <= {"params", "macs"} \
                or len(set(self.objectives)) != len(self.objectives):
            raise SynePruneError("--objectives: error and then params and/or macs (a blackbox records no latency), e.g. error,params")


def _prepare(output: Path, settings: dict[str, Any], overwrite: bool) -> None:
    if (output / SETTINGS_FILE).is_file():
        saved = json.loads((output / SETTINGS_FILE).read_text())
        if saved == settings:
            return  # continue: finished replays are kept
        if not overwrite:
            changed = sorted(k for k in settings if saved.get(k) != settings[k])
            raise SynePruneError(f"'{output}' holds a benchmark with other settings ({', '.join(changed)}); pass --overwrite "
                                 f"to replace it or choose another --output")
    elif holds_content(output) and not overwrite:
        raise SynePruneError(f"output '{output}' exists and is no benchmark; choose another --output or pass --overwrite")
    if output.exists():
        shutil.rmtree(output)
    output.mkdir(parents=True)
    (output / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")


@dataclass(frozen=True)
class _Replays:
    """What every replay of one benchmark shares (sent once to each worker process); ``run`` replays one."""

    table: F.Blackbox
    surrogate: Surrogate | None
    config: BenchmarkConfig
    output: Path

    def path(self, scheduler: str, seed: int) -> Path:
        return self.output / "runs" / scheduler / f"seed-{seed}.csv"

    def finished(self, scheduler: str, seed: int) -> bool:
        path = self.path(scheduler, seed)
        return path.is_file() and path.with_suffix(".json").is_file()

    def run(self, scheduler: str, seed: int) -> None:
        """Replay (scheduler, seed); write its trials and seconds, each atomically, the CSV last (it marks a finished replay)."""
        started = time.perf_counter()
        c = self.config
        trials = replay(self.table, self.surrogate, scheduler, seed, list(c.objectives), c.n_workers, c.max_trials, c.max_wallclock_s,
                        str(self.output / "syne-tune"))
        path = self.path(scheduler, seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        seconds = path.with_name(f".{path.stem}.json.tmp")
        seconds.write_text(json.dumps({"seconds": time.perf_counter() - started}) + "\n")
        seconds.replace(path.with_suffix(".json"))
        tmp = path.with_name(f".{path.name}.tmp")
        trials.to_csv(tmp, index=False)
        tmp.replace(path)


_WORKER_REPLAYS: _Replays | None = None


def _init_worker(replays: _Replays) -> None:
    global _WORKER_REPLAYS
    torch.set_num_threads(1)  # as replay() does: no worker starts more threads than its one core
    _WORKER_REPLAYS = replays


def _worker_run(scheduler: str, seed: int) -> None:
    _WORKER_REPLAYS.run(scheduler, seed)


def _run_pending(replays: _Replays, pending: list[tuple[str, int]], jobs: int, bar) -> None:
    """Run the ``pending`` (scheduler, seed) replays, ``jobs`` at once (in spawned worker processes; in this
    process for 1), advancing ``bar`` as each finishes. The first failure cancels the replays not started,
    waits for the running ones (kept on disk) and is raised."""
    if jobs == 1 or len(pending) <= 1:
        for key in pending:
            replays.run(*key)
            bar.update(1)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(jobs, len(pending)), mp_context=context, initializer=_init_worker, initargs=(replays,)) as pool:
        futures = [pool.submit(_worker_run, *key) for key in pending]
        try:
            for future in as_completed(futures):
                future.result()
                bar.update(1)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def run_benchmark(config: BenchmarkConfig, overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """Replay every scheduler and seed (skipping finished ones; ``config.jobs`` at once), then write the report;
    returns summary.json. Raises SynePruneError for bad settings or blackbox (before the output is touched)
    and the error of a failed replay (finished replays stay on disk)."""
    config.check()
    table = F.read_blackbox(config.blackbox, config.supernet)  # every check before the output is touched
    if len(table.rows) < 3:
        raise SynePruneError(f"blackbox '{config.blackbox}' holds {len(table.rows)} evaluation(s); record at least 3 (blackbox record --samples N)")
    output = Path(config.output)
    settings = {**{k: v for k, v in asdict(config).items() if k not in NOT_SETTINGS},
                "schedulers": list(config.schedulers), "objectives": list(config.objectives),
                "blackbox": str(Path(config.blackbox).resolve()), "blackbox_rows": len(table.rows),
                "supernet_sha256": table.header["supernet"]["sha256"]}
    _prepare(output, settings, overwrite)
    held_out = held_out_errors(table) if config.surrogate != "none" else pd.DataFrame(columns=["target", "surrogate", "mae", "normalised_mae", "rows"])
    held_out.to_csv(output / "surrogate.csv", index=False, float_format="%.10g")
    kind = choose(held_out) if config.surrogate == "auto" else config.surrogate
    replays = _Replays(table, Surrogate(table, kind) if kind != "none" else None, config, output)
    keys = [(s, seed) for s in config.schedulers for seed in range(config.seeds)]
    pending = sorted((key for key in keys if not replays.finished(*key)), key=lambda key: key[0] not in SLOW_SCHEDULERS)
    with tqdm(total=len(keys), initial=len(keys) - len(pending), desc="benchmark", unit="replay", disable=not progress) as bar:
        _run_pending(replays, pending, config.jobs, bar)
    runs = {key: pd.read_csv(replays.path(*key)) for key in keys}
    seconds = {key: json.loads(replays.path(*key).with_suffix(".json").read_text())["seconds"] for key in keys}
    levels = {s: table.levels if s in MULTI_FIDELITY else 1 for s in config.schedulers}
    title = f"{task_name(table.header['task'])} · {table.header['search_space']} space · {len(table.rows)} recorded sub-networks"
    per_scheduler = report.write_report(output, runs, list(config.objectives), levels, kind, held_out, config.max_wallclock_s,
                                        config.max_trials, title)
    summary = {"schedulers": per_scheduler, "surrogate": kind, "seeds": config.seeds, "blackbox": str(Path(config.blackbox).resolve()),
               "replay_seconds": {s: sum(v for (name, _), v in seconds.items() if name == s) for s in config.schedulers}}
    write_json(output / SUMMARY_FILE, summary)
    return summary
