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
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from syne_prune.blackbox import format as F
from syne_prune.blackbox import report
from syne_prune.blackbox.simulate import replay
from syne_prune.blackbox.surrogate import SURROGATES, Surrogate, choose, held_out_errors
from syne_prune.errors import SynePruneError
from syne_prune.search.results import write_summary
from syne_prune.search.schedulers import MULTI_FIDELITY, SCHEDULERS

SETTINGS_FILE = "benchmark.json"


@dataclass
class BenchmarkConfig:
    """Replay ``schedulers`` × ``seeds`` on the blackbox directory ``blackbox``; write to ``output``."""

    blackbox: str
    output: str
    schedulers: tuple[str, ...] = SCHEDULERS
    seeds: int = 10
    max_trials: int | None = None
    max_wallclock_s: float | None = None  # simulated seconds
    n_workers: int = 1
    surrogate: str = "auto"
    objectives: tuple[str, ...] = ("error", "params")
    supernet: str | None = None  # if given, the blackbox must have been recorded from it

    def check(self) -> None:
        unknown = [s for s in self.schedulers if s not in SCHEDULERS]
        if unknown or not self.schedulers or len(set(self.schedulers)) != len(self.schedulers):
            raise SynePruneError(f"--schedulers: give distinct names from {', '.join(SCHEDULERS)} (got {','.join(self.schedulers)})")
        if self.surrogate not in SURROGATES:
            raise SynePruneError(f"unknown --surrogate '{self.surrogate}'; choose one of {', '.join(SURROGATES)}")
        if self.seeds < 1 or self.n_workers < 1:
            raise SynePruneError("--seeds and --n-workers must be at least 1")
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
    elif output.exists() and (not output.is_dir() or any(output.iterdir())) and not overwrite:
        raise SynePruneError(f"output '{output}' exists and is no benchmark; choose another --output or pass --overwrite")
    if output.exists():
        shutil.rmtree(output)
    output.mkdir(parents=True)
    (output / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")


def run_benchmark(config: BenchmarkConfig, overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """Replay every scheduler and seed (skipping finished ones), then write the report; returns summary.json."""
    config.check()
    table = F.read_blackbox(config.blackbox, config.supernet)  # every check before the output is touched
    if len(table.rows) < 3:
        raise SynePruneError(f"blackbox '{config.blackbox}' holds {len(table.rows)} evaluation(s); record at least 3 (blackbox record --samples N)")
    output = Path(config.output)
    settings = {**{k: v for k, v in asdict(config).items() if k not in ("output", "supernet", "blackbox")},
                "schedulers": list(config.schedulers), "objectives": list(config.objectives),
                "blackbox": str(Path(config.blackbox).resolve()), "blackbox_rows": len(table.rows),
                "supernet_sha256": table.header["supernet"]["sha256"]}
    _prepare(output, settings, overwrite)
    held_out = held_out_errors(table) if config.surrogate != "none" else pd.DataFrame(columns=["target", "surrogate", "mae", "normalised_mae", "rows"])
    held_out.to_csv(output / "surrogate.csv", index=False, float_format="%.10g")
    kind = choose(held_out) if config.surrogate == "auto" else config.surrogate
    surrogate = Surrogate(table, kind) if kind != "none" else None
    runs, seconds = {}, {}
    keys = [(s, seed) for s in config.schedulers for seed in range(config.seeds)]
    for scheduler, seed in tqdm(keys, desc="benchmark", unit="replay", disable=not progress):
        path = output / "runs" / scheduler / f"seed-{seed}.csv"
        if not path.is_file():
            started = time.perf_counter()
            trials = replay(table, surrogate, scheduler, seed, list(config.objectives), config.n_workers, config.max_trials,
                            config.max_wallclock_s, str(output / "syne-tune"))
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            trials.to_csv(tmp, index=False)
            tmp.replace(path)
            path.with_suffix(".json").write_text(json.dumps({"seconds": time.perf_counter() - started}) + "\n")
        runs[(scheduler, seed)] = pd.read_csv(path)
        seconds[(scheduler, seed)] = json.loads(path.with_suffix(".json").read_text())["seconds"]
    levels = {s: table.levels if s in MULTI_FIDELITY else 1 for s in config.schedulers}
    title = f"{table.header['task']} · {table.header['search_space']} space · {len(table.rows)} recorded sub-networks"
    per_scheduler = report.write_report(output, runs, list(config.objectives), levels, kind, held_out, config.max_wallclock_s,
                                        config.max_trials, title)
    summary = {"schedulers": per_scheduler, "surrogate": kind, "seeds": config.seeds, "blackbox": str(Path(config.blackbox).resolve()),
               "replay_seconds": {s: sum(v for (name, _), v in seconds.items() if name == s) for s in config.schedulers}}
    write_summary(output / "summary.json", summary)
    return summary
