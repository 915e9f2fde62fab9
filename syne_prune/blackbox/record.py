"""Record a blackbox: evaluate sub-networks of a super-network once, for many replayed searches later.

``record_samples`` evaluates N sub-networks drawn from the super-network's search space (its largest,
smallest and midpoint first, then seeded uniform samples; no two with the same mask) with the code a
search trial runs (``syne_prune.search.trial.Evaluator``): in this process with the super-network loaded
once, or with ``n_workers > 1`` in that many worker processes (each loads it once; their evaluation
times are then measured under the same sharing of the cores as a search with that many workers).
``record_from_trials`` takes the completed full-fidelity trials of finished searches instead.
Rows are appended as they arrive; running the same command again skips recorded configurations.
"""
from __future__ import annotations

import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from syne_tune.config_space import config_space_to_json_dict
from tqdm.auto import tqdm

from syne_prune.artifacts import SearchDir
from syne_prune.blackbox import format as F
from syne_prune.cores import threads_per_worker
from syne_prune.data import EVAL_BATCH_SIZE, get_task
from syne_prune.errors import SynePruneError
from syne_prune.files import holds_content, output_lock
from syne_prune.masks import SubnetMask
from syne_prune.models import get_family
from syne_prune.objectives import encoder_size, subnet_size
from syne_prune.precision import run_compute
from syne_prune.search import FIDELITY_ATTR, MULTI_FIDELITY, Evaluator, TrialSettings, subnetwork_key
from syne_prune.search_spaces import get_search_space
from syne_prune.supernet import load_supernet

RESUMABLE_KEYS = ("supernet", "search_space", "fidelity_levels", "max_eval_examples", "config_space")


@dataclass(frozen=True)
class RecordConfig:
    """``samples`` sub-networks of ``supernet`` into the blackbox directory ``output``."""

    supernet: str
    output: str
    samples: int
    seed: int = 0
    n_workers: int = 1
    fidelity_levels: int = 9
    max_eval_examples: int | None = None
    data_dir: str | None = None
    eval_batch_size: int = EVAL_BATCH_SIZE

    def check(self) -> None:
        if self.samples < 1 or self.n_workers < 1 or self.fidelity_levels < 1 or self.eval_batch_size < 1:
            raise SynePruneError("--samples, --n-workers, --fidelity-levels and --eval-batch-size must be at least 1")
        if self.max_eval_examples is not None and self.max_eval_examples < 1:
            raise SynePruneError(f"--max-eval-examples must be at least 1, got {self.max_eval_examples}")


# The uniform samples' random stream. 1: numpy.random.RandomState(seed), the very stream of random search with
# the same seed, whose replay then started only recorded sub-networks (measured on MiniLM/MRPC, 500 trials: 100%
# recorded for that seed, 2-3% for the others); 2: RandomState([seed, SAMPLE_STREAM_TAG]), which no scheduler shares.
SAMPLE_STREAM, SAMPLE_STREAM_TAG = 2, 0x626C6B  # "blk"


def draw_configurations(space, samples: int, seed: int, stream: int = SAMPLE_STREAM) -> list[dict[str, int]]:
    """``samples`` configurations of distinct sub-networks: largest, smallest, midpoint, then uniform
    samples from the random ``stream`` of ``seed`` (see SAMPLE_STREAM; fewer if the space has fewer sub-networks)."""
    random_state = np.random.RandomState(seed if stream == 1 else [seed, SAMPLE_STREAM_TAG])
    chosen, keys = [], set()
    candidates = iter(space.initial_points())
    for _ in range(100 * samples + 3):
        if len(chosen) == samples:
            break
        config = next(candidates, None) or space.sample(random_state)
        key = subnetwork_key(space, config)
        if key not in keys:
            keys.add(key)
            chosen.append(space.validate(config))
    return chosen


def evaluate_row(evaluator, config: dict[str, int]) -> dict[str, Any]:
    """One blackbox row: the trial code's validation errors at every fidelity level, params, MACs and
    evaluation seconds, plus the test-split error (evaluated after the timed part; empty for a task without test data)."""
    errors: list[float] = []
    last = evaluator.evaluate(config, lambda result: errors.append(float(result["error"])))
    row = {**config, **dict(zip(F.error_columns(len(errors)), errors))}
    test_error = evaluator.test_error(config)
    row.update(test_error=float(test_error) if test_error is not None else "", params=float(last["params"]), macs=float(last["macs"]),
               eval_s=float(last["eval_s"]))
    return row


def size_header(model, shape, seq_len: int) -> dict[str, int]:
    """What params and MACs of any configuration need besides the shape (see format.py)."""
    full = subnet_size(model, seq_len=seq_len)
    full_mask = SubnetMask.full(shape.num_layers, shape.num_heads, shape.num_neurons)
    _, encoder_macs = encoder_size(shape, full_mask, seq_len, get_family(model.config))
    return {"seq_len": seq_len, "fixed_params": full.params - full.encoder_params, "fixed_macs": full.macs - encoder_macs,
            "full_params": full.params, "full_macs": full.macs}


def make_header(supernet: Path, metadata: dict[str, Any], model, space, levels: int, source: str,
                max_eval_examples: int | None, data_dir: str | None, compute: dict[str, str] | None) -> dict[str, Any]:
    """The blackbox's header (format.py); ``compute``: the precision and kind of device its rows were evaluated in
    (``precision.run_compute``; None where unknown)."""
    return {
        "format_version": F.FORMAT_VERSION, "kind": F.KIND,
        "supernet": {"path": str(supernet.resolve()), "sha256": F.supernet_digest(supernet)},
        "task": metadata["task"], "metric": get_task(metadata["task"]).metric_name,
        "search_space": space.name, "config_space": config_space_to_json_dict(space.config_space),
        "shape": asdict(space.shape), "size": size_header(model, space.shape, 128), "fidelity_levels": levels,
        "max_eval_examples": max_eval_examples, "data_dir": data_dir, "source": source,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "sample_stream": SAMPLE_STREAM,
        "compute": compute,
    }



def _open(output: Path, header: dict[str, Any]) -> tuple[set[bytes], int]:
    """Create the blackbox, or check that the existing one has the same settings; returns the recorded keys
    and the blackbox's sample stream (1 for one recorded before ``sample_stream`` existed)."""
    if (output / F.HEADER_FILE).exists():
        existing = F.read_blackbox(output)
        def comparable(h: dict[str, Any]) -> dict[str, Any]:  # the super-network by its digest, not where it lies
            return json.loads(json.dumps({k: h["supernet"].get("sha256") if k == "supernet" else h.get(k) for k in RESUMABLE_KEYS}))

        mine, theirs = comparable(header), comparable(existing.header)
        changed = [k for k in RESUMABLE_KEYS if mine[k] != theirs[k]]
        recorded, mine_compute = existing.header.get("compute"), header["compute"]  # None: not known
        if recorded and mine_compute and recorded["precision"] != mine_compute["precision"]:
            changed.append(f"precision {recorded['precision']}: add with --precision {recorded['precision']}")
        if changed:
            raise SynePruneError(f"blackbox '{output}' was recorded with other settings ({', '.join(changed)}); use the same "
                                 f"super-network and options to add to it, or choose another --output")
        space = existing.space()
        keys = {subnetwork_key(space, c) for c in existing.rows[existing.names].to_dict("records")}
        return keys, int(existing.header.get("sample_stream", 1))
    if holds_content(output):
        raise SynePruneError(f"output '{output}' exists and is not a blackbox; choose another --output")
    F.create(output, header)
    return set(), SAMPLE_STREAM


def record_samples(config: RecordConfig, progress: bool = True) -> dict[str, Any]:
    """Evaluate ``config.samples`` sub-networks into the blackbox ``config.output`` (resumable), holding its
    ``files.output_lock`` (a second recording into it is refused). Returns {"recorded": new rows, "skipped":
    already recorded, "rows": total rows, "seconds": wall time}. Raises SynePruneError for a super-network or data
    that cannot be loaded, an output that is not this blackbox, and (naming the path) a failed write."""
    config.check()
    started = time.time()
    settings = TrialSettings(supernet=str(Path(config.supernet).resolve()), objectives=("error", "params", "macs"),
                             fidelity_levels=config.fidelity_levels, data_dir=str(Path(config.data_dir).resolve()) if config.data_dir else None,
                             eval_batch_size=config.eval_batch_size, max_eval_examples=config.max_eval_examples)
    evaluator = Evaluator(settings)  # verifies the checkpoint and loads the data first: errors before any output
    levels = len(evaluator.validation_chunks)
    header = make_header(Path(settings.supernet), evaluator.supernet.metadata, evaluator.supernet.model, evaluator.space, levels,
                         "samples", config.max_eval_examples, settings.data_dir, run_compute())
    output = Path(config.output)
    with output_lock(output, "blackbox recording"):
        recorded, stream = _open(output, header)
        drawn = draw_configurations(evaluator.space, config.samples, config.seed, stream)
        todo = [c for c in drawn if subnetwork_key(evaluator.space, c) not in recorded]
        rows = _evaluate_all(evaluator, settings, todo, config.n_workers, progress)
        for row in rows:
            F.append_row(output, header, row)
    return {"recorded": len(todo), "skipped": len(drawn) - len(todo),
            "rows": len(recorded) + len(todo), "seconds": time.time() - started, "output": str(output)}


def _evaluate_all(evaluator, settings, todo: list[dict], n_workers: int, progress: bool):
    """Yield rows as they finish: in this process, or in ``n_workers`` worker processes."""
    bar = tqdm(total=len(todo), desc="blackbox", unit="sub-network", disable=not progress)
    try:
        if n_workers == 1 or len(todo) <= 1:
            for config in todo:
                yield evaluate_row(evaluator, config)
                bar.update(1)
            return
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(n_workers, mp_context=context, initializer=_init_worker,
                                 initargs=(settings, threads_per_worker(n_workers))) as pool:
            futures = [pool.submit(_worker_evaluate, config) for config in todo]
            for future in as_completed(futures):
                yield future.result()
                bar.update(1)
    finally:
        bar.close()


_WORKER_EVALUATOR = None


def _init_worker(settings, threads: int) -> None:
    global _WORKER_EVALUATOR
    torch.set_num_threads(threads)
    _WORKER_EVALUATOR = Evaluator(settings)


def _worker_evaluate(config: dict[str, int]) -> dict[str, Any]:
    return evaluate_row(_WORKER_EVALUATOR, config)


def record_from_trials(search_dirs: list[str], output: str) -> dict[str, Any]:
    """The completed full-fidelity trials of weight-sharing searches (one super-network, one number of
    fidelity levels) into the blackbox ``output``; per-level errors of a multi-fidelity search come
    from its Syne Tune results. Resumable as ``record_samples``. Returns the same summary."""
    searches = [_read_search(Path(d)) for d in search_dirs]
    supernets = {s["supernet"] for s in searches}
    levels = {s["levels"] for s in searches}
    if len(supernets) != 1 or len(levels) != 1:
        raise SynePruneError("--from-trials searches must share one super-network and one number of fidelity levels "
                             f"(got {len(supernets)} super-network(s), fidelity levels {sorted(levels)})")
    supernet, level_count = Path(supernets.pop()), levels.pop()
    loaded = load_supernet(supernet)
    model = loaded.model
    space = get_search_space(loaded.metadata["search_space"], get_family(model.config).shape(model.config))
    first = searches[0]["settings"]
    computes = {json.dumps(s["compute"], sort_keys=True) for s in searches if s["compute"]}
    if len(computes) > 1:
        raise SynePruneError(f"--from-trials searches must share one precision and device (got {', '.join(sorted(computes))})")
    header = make_header(supernet, loaded.metadata, model, space, level_count, "trials: " + ",".join(str(Path(d).resolve()) for d in search_dirs),
                         first.get("max_eval_examples"), first.get("data_dir"), json.loads(computes.pop()) if computes else None)
    out = Path(output)
    with output_lock(out, "blackbox recording"):
        recorded, _ = _open(out, header)
        added = skipped = 0
        for search in searches:
            for row in _rows_of_search(search, space, level_count):
                key = subnetwork_key(space, row)
                if key in recorded:
                    skipped += 1
                    continue
                recorded.add(key)
                F.append_row(out, header, row)
                added += 1
    return {"recorded": added, "skipped": skipped, "rows": len(recorded), "output": str(out)}


def _read_search(directory: Path) -> dict[str, Any]:
    saved = SearchDir(directory).read_settings(require_trials=True)
    if saved.trial_kind != "weight-sharing" or not saved.supernet:
        raise SynePruneError(f"'{directory}' is a standard-NAS search; a blackbox holds sub-networks of one super-network")
    settings = saved.settings
    levels = int(settings.get("fidelity_levels", 1)) if settings.get("scheduler") in MULTI_FIDELITY else 1
    return {"dir": directory, "supernet": saved.supernet, "settings": settings, "levels": levels, "compute": saved.compute}


def _rows_of_search(search: dict[str, Any], space, levels: int) -> list[dict[str, Any]]:
    trials = SearchDir(search["dir"]).trials()
    names = list(space.config_space)
    done = trials[(trials["status"] == "completed") & (trials[FIDELITY_ATTR] >= levels)]
    per_level = _errors_per_level(search["dir"], space, levels) if levels > 1 else {}
    rows = []
    for record in done.to_dict("records"):
        config = space.validate({n: record[n] for n in names})
        errors = per_level.get(subnetwork_key(space, config), [float(record["error"])]) if levels > 1 else [float(record["error"])]
        if len(errors) != levels:
            continue  # its per-level reports are not in the Syne Tune results (an interrupted part)
        test = record.get("test_error")
        rows.append({**config, **dict(zip(F.error_columns(levels), errors)),
                     "test_error": float(test) if test is not None and pd.notna(test) else "",
                     "params": float(record["params"]), "macs": float(record["macs"]), "eval_s": float(record["eval_s"])})
    return rows


def _errors_per_level(directory: Path, space, levels: int) -> dict[bytes, list[float]]:
    """Validation error at fidelity levels 1..F of each fully evaluated trial, from Syne Tune's results."""
    names = list(space.config_space)
    out: dict[bytes, list[float]] = {}
    for results in sorted((directory / "syne-tune").glob("part-*/results.csv.zip")):
        frame = pd.read_csv(results)
        columns = {n: f"config_{n}" if f"config_{n}" in frame else n for n in names}
        for _, trial in frame.groupby("trial_id"):
            trial = trial.sort_values("fidelity")
            if list(trial["fidelity"]) == list(range(1, levels + 1)):
                config = {n: int(trial[columns[n]].iloc[0]) for n in names}
                out[subnetwork_key(space, config)] = [float(e) for e in trial["error"]]
    return out
