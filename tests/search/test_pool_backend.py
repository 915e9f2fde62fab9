"""The pool backend: same results as one process per trial, faults become failed trials, one copy of the weights."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from syne_prune.artifacts import read_trials
from syne_prune.cores import threads_per_worker
from syne_prune.search import SearchConfig, WeightSharingSettings, run_search
from syne_prune.search.backends.pool.workers import PoolBackend
from syne_prune.search.trial import TrialSettings


def _objectives(out: Path) -> pd.DataFrame:
    trials = read_trials(out / "trials.csv").sort_values("trial_id").reset_index(drop=True)  # + the Pareto set's test errors
    names = [c for c in trials.columns if c.startswith(("num_heads", "num_units", "num_layers"))]
    return trials[["trial_id", "status", *names, "error", "params", "macs", "test_error"]]


@pytest.mark.slow
def test_pool_and_local_backends_give_identical_trials(supernets, tmp_path):
    tables = {}
    for backend in ("local", "pool"):
        out = tmp_path / backend
        run_search(SearchConfig(trial_settings=WeightSharingSettings(str(supernets["bert"])), output=str(out), scheduler="random", backend=backend,
                                n_workers=2, max_trials=6, seed=5, eval_batch_size=8), progress=False)  # 3 rounds of 2 processes
        tables[backend] = _objectives(out)
    assert len(tables["pool"]) == 6 and (tables["pool"]["status"] == "completed").all()
    pd.testing.assert_frame_equal(tables["pool"], tables["local"], check_exact=True)
    # the pool's trials do not pay for a process start: hand-over from the Tuner only
    assert pd.read_csv(tmp_path / "pool" / "trials.csv")["setup_s"].max() < 1.0


def _start_search(supernet: Path, out: Path, *extra: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "syne_prune.cli", "search", "--supernet", str(supernet), "--scheduler", "random",
            "--n-workers", "2", "--max-trials", "12", "--seed", "2", "--eval-batch-size", "8", "--output", str(out), *extra]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(predicate, timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "timed out waiting for the search"
        time.sleep(0.1)


def _frozen_worker(out: Path) -> int:
    """Freeze pool worker 0 as soon as the pool is up (SIGSTOP): the next trial it is handed never finishes."""
    workers_file = out / "syne-tune" / "part-0" / "pool" / "workers.json"
    _wait_for(lambda: workers_file.exists() and workers_file.read_text().strip() != "")  # seen empty mid-write once in CI
    pid = json.loads(workers_file.read_text())["workers"][0]["pid"]
    os.kill(pid, signal.SIGSTOP)
    return pid


def _trials(out: Path) -> pd.DataFrame:
    path = out / "trials.csv"
    return pd.read_csv(path) if path.exists() else pd.DataFrame()


@pytest.mark.slow
def test_a_killed_worker_fails_its_trial_and_the_search_finishes(supernets, tmp_path):
    out = tmp_path / "out"
    process = _start_search(supernets["bert"], out)
    pid = _frozen_worker(out)
    _wait_for(lambda: len(_trials(out)) >= 4)  # the other worker goes on; worker 0 holds its trial
    os.kill(pid, signal.SIGKILL)  # mid-trial
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    trials = _trials(out)
    assert len(trials) == 12 and trials["trial_id"].is_unique
    failed = trials[trials["status"] == "failed"]
    assert len(failed) == 1 and (trials["status"] != "failed").sum() == 11
    assert "WorkerDied" in failed["failure_reason"].item() and "SIGKILL" in failed["failure_reason"].item()
    workers = json.loads((out / "syne-tune" / "part-0" / "pool" / "workers.json").read_text())
    assert [r["pid"] for r in workers["replaced"]] == [pid] and "SIGKILL" in workers["replaced"][0]["exit"]
    assert pid not in [w["pid"] for w in workers["workers"]]


@pytest.mark.slow
def test_a_hung_trial_is_stopped_at_the_time_limit(supernets, tmp_path):
    out = tmp_path / "out"
    process = _start_search(supernets["bert"], out, "--trial-timeout", "3")
    _frozen_worker(out)  # hangs: never reports, never exits
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    trials = _trials(out)
    assert len(trials) == 12
    failed = trials[trials["status"] == "failed"]
    assert len(failed) == 1 and "per-trial limit of 3 s" in failed["failure_reason"].item()
    assert failed["wall_time_s"].item() >= 3


@pytest.mark.slow
def test_a_worker_that_cannot_start_stops_the_search_with_its_reason(supernets, tmp_path):
    from syne_prune import SynePruneError

    settings = TrialSettings(supernet=str(supernets["bert"]), data_dir=str(tmp_path / "no-glue"))
    backend = PoolBackend(settings, n_workers=1, log_dir=tmp_path / "pool", entry_point=__file__)
    try:
        with pytest.raises(SynePruneError, match=r"a pool worker could not start: SynePruneError: .*no-glue/RTE/train.tsv not found"):
            backend.start(progress=False)
    finally:
        backend.close()


def test_threads_are_split_between_workers():
    cores = len(os.sched_getaffinity(0))
    for n in (1, 2, 3, 8):
        assert threads_per_worker(n) >= 1 and (threads_per_worker(n) * n <= cores or threads_per_worker(n) == 1)


@pytest.fixture(scope="module")
def big_embedding_supernet(supernets, tmp_path_factory) -> tuple[Path, int]:
    """The tiny BERT super-network with a 96 MiB embedding matrix, so the weights dwarf measurement noise."""
    from syne_prune.artifacts import SupernetDir
    from syne_prune.supernet import load_supernet

    source = load_supernet(supernets["bert"])
    out = tmp_path_factory.mktemp("big") / "supernet"
    source.model.resize_token_embeddings(96 * 2**20 // (4 * source.model.config.hidden_size))
    source.model.save_pretrained(out)
    source.tokenizer.save_pretrained(out)
    metadata = {k: v for k, v in source.metadata.items() if k not in ("manifest", "format_version")}
    SupernetDir(out).write(metadata)
    return out, sum(p.stat().st_size for p in out.glob("*.safetensors"))


def _worker_growth_mb(supernet: Path, log_dir: Path, share_weights: bool) -> list[float]:
    settings = TrialSettings(supernet=str(supernet), eval_batch_size=8)
    backend = PoolBackend(settings, n_workers=2, log_dir=log_dir, entry_point=__file__, share_weights=share_weights)
    try:
        backend.start(progress=False)
        workers = json.loads((log_dir / "workers.json").read_text())
        assert workers["shared_weights"] is share_weights
        return [w["uss_after_supernet_mb"] - w["uss_before_supernet_mb"] for w in workers["workers"]]
    finally:
        backend.close()


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.disk_usage("/dev/shm").free < 400 * 2**20,
                    reason="weights are shared through /dev/shm on Linux only")
def test_workers_share_one_copy_of_the_weights(big_embedding_supernet, tmp_path):
    from syne_prune.search.backends.pool.worker import _uss_mb
    from syne_prune.supernet import load_supernet

    supernet, weight_bytes = big_embedding_supernet
    weights_mb = weight_bytes / 2**20
    # control: the measurement sees a private copy of the weights
    model = load_supernet(supernet).model
    before = _uss_mb()
    copy = [p.detach().clone() for p in model.parameters()]
    assert _uss_mb() - before >= 0.9 * weights_mb
    del copy, model
    # shared memory: loading the super-network adds little memory that only that worker holds
    shared = _worker_growth_mb(supernet, tmp_path / "shared", share_weights=True)
    assert all(growth <= 0.2 * weights_mb for growth in shared), (shared, weights_mb)
    # the fallback (each worker loads it): transformers maps the safetensors file, so workers share its pages
    mapped = _worker_growth_mb(supernet, tmp_path / "mapped", share_weights=False)
    assert all(growth <= 0.5 * weights_mb for growth in mapped), (mapped, weights_mb)


@pytest.mark.slow
def test_the_tuner_wakes_when_a_worker_reports_not_after_its_sleep(supernets, tmp_path):
    """PoolBackend.wait returns as soon as a worker finishes: a free worker is not left idle for the Tuner's sleep."""
    from syne_tune.backend.trial_status import Status

    from syne_prune import get_family, get_search_space
    from syne_prune.supernet import load_supernet

    model = load_supernet(supernets["bert"]).model
    space = get_search_space("medium", get_family(model.config).shape(model.config))
    settings = TrialSettings(supernet=str(supernets["bert"]), eval_batch_size=8)
    backend = PoolBackend(settings, n_workers=1, log_dir=tmp_path / "pool", entry_point=__file__)
    backend.set_path(str(tmp_path), "wait-test")
    try:
        backend.start(progress=False)
        trial = backend.start_trial({**space.largest(), **settings.as_constants()})
        started = time.monotonic()
        while backend._read_status(trial.trial_id) == Status.in_progress and time.monotonic() - started < 120:
            backend.wait(60.0)
        assert backend._read_status(trial.trial_id) == Status.completed
        assert time.monotonic() - started < 30, "wait slept through the worker's report"
    finally:
        backend.close()
