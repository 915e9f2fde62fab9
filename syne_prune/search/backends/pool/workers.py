"""``--backend pool``: long-lived worker processes that load the super-network once.

A Syne Tune ``LocalBackend`` starts one Python process per trial, which spends seconds importing torch
and loading the checkpoint before a sub-second evaluation. ``PoolBackend`` keeps ``n_workers``
processes alive instead. The Tuner sees an ordinary ``LocalBackend``: every trial still has its folder
with ``config.json``, ``std.out`` (the ``[tune-metric]`` lines of ``syne_tune.Reporter``), ``std.err``
and the ``stop``/``pause``/``end`` files; only *how a trial runs* changes (``_schedule``,
``_read_status``, ``_is_process_done``, ``_kill_process``).

Weights: the parent verifies and loads the checkpoint once and moves its tensors to shared memory
(``torch.Tensor.share_memory_``); each worker maps the same pages, so N workers hold one copy. Where
``/dev/shm`` is too small (a Docker default of 64 MB) or the platform is not Linux, every worker loads
its own copy instead and ``workers.json`` says so.

Threads: each worker gets ``cores // n_workers`` intra-op threads (at least 1), so the workers together
use the cores once; the parent only schedules.

GPUs: on a run whose device is a GPU, worker ``i`` sees only GPU ``i mod G`` of the run's G GPUs
(``CUDA_VISIBLE_DEVICES`` in its environment: ``devices.gpu_assignment`` and ``devices.worker_environment``), and
``workers.json`` says which.

Faults: a worker that dies (killed, out of memory) fails its trial with the reason and is replaced; a
trial running past ``trial_timeout_s`` has its worker killed and replaced and fails with a timeout. A
stop or pause decision (MO-ASHA) is cooperative: the worker sees the ``stop`` file after its next
report and moves on, without losing its loaded super-network.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing import current_process
from multiprocessing.connection import Listener
from multiprocessing.connection import wait as wait_for_messages
from pathlib import Path
from typing import Any

import torch
from syne_tune.backend import LocalBackend
from syne_tune.backend.trial_status import Status
from syne_tune.util import dump_json_with_numpy
from tqdm.auto import tqdm

from syne_prune.cores import threads_per_worker
from syne_prune.devices import gpu_assignment, worker_environment, worker_gpus
from syne_prune.errors import SynePruneError
from syne_prune.search.backends.pool.worker import AUTHKEY_ENV
from syne_prune.search.protocol import FAILURE_PREFIX, failure_line
from syne_prune.search.trial import TrialSettings
from syne_prune.supernet import load_supernet

logger = logging.getLogger(__name__)

WORKERS_FILE = "workers.json"
STARTUP_ATTEMPTS = 3  # a worker that dies this many times in a row before it is ready stops the search


@dataclass
class _Worker:
    index: int
    process: subprocess.Popen
    started: float
    conn: Any = None  # set once the worker has connected
    ready: bool = False
    trial_id: int | None = None
    trial_started: float = 0.0
    startup_failures: int = 0
    info: dict[str, Any] = field(default_factory=dict)


class PoolBackend(LocalBackend):
    """Syne Tune trial backend whose trials run in ``n_workers`` persistent processes."""

    def __init__(self, settings: TrialSettings, n_workers: int, log_dir: str | Path, entry_point: str,
                 trial_timeout_s: float | None = None, share_weights: bool = True, threads: int | None = None,
                 device: torch.device | None = None) -> None:
        super().__init__(entry_point=entry_point, rotate_gpus=False)  # the pool pins each worker to its GPU itself
        self.device = device if device is not None else torch.device("cpu")
        self.gpus = gpu_assignment(n_workers, worker_gpus(self.device))
        self.settings, self.n_workers, self.trial_timeout_s = settings, n_workers, trial_timeout_s
        self.log_dir = Path(log_dir)
        self.threads = threads or threads_per_worker(n_workers)
        self.share_weights = share_weights
        self.supernet = None  # kept alive here: replacement workers map the same shared memory
        self.not_shared_reason = ""
        self.workers: list[_Worker] = []
        self.replaced: list[dict[str, Any]] = []  # workers that died or hung, in order
        self._pending: deque[tuple[int, dict[str, Any]]] = deque()
        self._exit_codes: dict[int, int] = {}
        self._constants = set(settings.as_constants())
        self._listener = None
        self._closing = False

    # ---- the pool ---------------------------------------------------------------------------------
    def start(self, progress: bool = True) -> None:
        """Load the super-network, start the workers and wait until every one is ready to evaluate."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self.share_weights:
            self.supernet = self._shared_supernet()
        self._listener = Listener(family="AF_UNIX", authkey=bytes(current_process().authkey))
        threading.Thread(target=self._accept_workers, name="syne-prune-pool-accept", daemon=True).start()
        self.workers = [self._spawn(i) for i in range(self.n_workers)]
        with tqdm(total=self.n_workers, desc="starting pool workers", unit="worker", disable=not progress) as bar:
            while not all(w.ready for w in self.workers):
                ready = sum(w.ready for w in self.workers)
                self._supervise()
                bar.update(sum(w.ready for w in self.workers) - ready)
                time.sleep(0.05)

    def _shared_supernet(self):
        """The verified super-network with its tensors in shared memory, or None where that is not possible."""
        weights = sum(p.stat().st_size for p in Path(self.settings.supernet).glob("*.safetensors"))
        if not sys.platform.startswith("linux"):
            self.not_shared_reason = f"shared memory is only used on Linux (this is {sys.platform})"
        elif not Path("/dev/shm").is_dir() or shutil.disk_usage("/dev/shm").free < 1.5 * weights:
            free = shutil.disk_usage("/dev/shm").free / 2**20 if Path("/dev/shm").is_dir() else 0
            self.not_shared_reason = f"/dev/shm has {free:.0f} MiB free, the weights need {weights / 2**20:.0f} MiB"
        if self.not_shared_reason:
            logger.warning("pool: every worker loads the super-network itself: %s", self.not_shared_reason)
            return None
        supernet = load_supernet(self.settings.supernet)
        supernet.model.share_memory()
        return supernet

    def _spawn(self, index: int, startup_failures: int = 0) -> _Worker:
        """Start ``python -m syne_prune.search.backends.pool.worker`` (a fresh interpreter: no fork of a process with torch
        threads, and unlike multiprocessing's spawn it never re-imports the caller's main script)."""
        env = dict(os.environ, **{AUTHKEY_ENV: bytes(current_process().authkey).hex()}, **self.environment_of(index))
        with open(self.log_dir / f"worker-{index}.log", "ab") as log:
            process = subprocess.Popen([sys.executable, "-m", "syne_prune.search.backends.pool.worker", self._listener.address],
                                       stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)
        return _Worker(index=index, process=process, started=time.time(), startup_failures=startup_failures)

    def environment_of(self, index: int) -> dict[str, str]:
        """What worker ``index`` gets on top of this process's environment: its threads (``OMP_NUM_THREADS``) and its
        device (``devices.worker_environment``: on GPUs, ``CUDA_VISIBLE_DEVICES`` = its one GPU)."""
        return {"OMP_NUM_THREADS": str(self.threads), **worker_environment(self.gpus[index], self.device)}

    def _accept_workers(self) -> None:
        """Runs in a thread: pair each connecting worker with its process and send it what it needs (the
        worker reads this only after importing torch, and the Tuner must not wait for that)."""
        while not self._closing:
            try:
                conn = self._listener.accept()
                pid = conn.recv()
            except Exception:  # noqa: BLE001 - the listener was closed, or a client went away or failed to authenticate
                continue
            worker = next((w for w in self.workers if w.process.pid == pid), None)
            if worker is None:
                conn.close()
                continue
            worker.conn = conn
            with contextlib.suppress(OSError):
                conn.send((self.settings, self.threads, self.supernet))

    def _replace(self, worker: _Worker, startup_failure: bool) -> None:
        self._terminate(worker)
        failures = worker.startup_failures + 1 if startup_failure else 0
        if failures >= STARTUP_ATTEMPTS:
            raise SynePruneError(f"pool worker {worker.index} died {failures} times while starting (see {self.log_dir}); "
                                 "check memory or use --backend local")
        self.replaced.append({"worker": worker.index, "pid": worker.process.pid, "exit": _describe_exit(worker.process.returncode)})
        self.workers[worker.index] = self._spawn(worker.index, failures)

    @staticmethod
    def _terminate(worker: _Worker) -> None:
        if worker.process.poll() is None:
            worker.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.process.wait(timeout=10)
        if worker.conn is not None:
            worker.conn.close()

    def _supervise(self) -> None:
        """Collect finished trials, replace dead or hung workers, hand pending trials to idle workers."""
        for worker in list(self.workers):
            try:
                while worker.conn is not None and worker.conn.poll():
                    self._handle(worker, worker.conn.recv())
            except (EOFError, OSError):
                pass  # the worker is gone; poll() below says so
            if worker.process.poll() is not None:
                exit_reason = _describe_exit(worker.process.returncode)
                self._fail_running(worker, f"WorkerDied: the pool worker running this trial died ({exit_reason}); it was replaced")
                self._replace(worker, startup_failure=not worker.ready)
            elif (worker.trial_id is not None and self.trial_timeout_s is not None
                    and time.time() - worker.trial_started > self.trial_timeout_s):
                self._fail_running(worker, f"TimeoutError: the trial ran longer than the per-trial limit of {self.trial_timeout_s:g} s "
                                           "(--trial-timeout); its worker was restarted")
                self._replace(worker, startup_failure=False)
        self._dispatch()

    def _handle(self, worker: _Worker, message: tuple) -> None:
        kind = message[0]
        if kind == "ready":
            worker.ready = True
            worker.info = {"worker": worker.index, "gpu": self.gpus[worker.index], **message[1], "startup_s": time.time() - worker.started}
            if all(w.ready for w in self.workers):
                self._write_workers_file()
        elif kind == "startup_failed":
            raise SynePruneError(f"a pool worker could not start: {message[1].removeprefix(FAILURE_PREFIX)}")
        elif kind == "done":
            _, trial_id, code = message
            self._exit_codes[trial_id] = code
            worker.trial_id = None

    def _fail_running(self, worker: _Worker, reason: str) -> None:
        if worker.trial_id is None:
            return
        with open(self.trial_path(worker.trial_id) / "std.err", "a") as err:
            err.write(failure_line(reason) + "\n")
        self._exit_codes[worker.trial_id] = 1
        worker.trial_id = None

    def _dispatch(self) -> None:
        for worker in self.workers:
            if not self._pending:
                return
            if worker.ready and worker.trial_id is None and worker.process.poll() is None:
                trial_id, config = self._pending.popleft()
                hyperparameters = {k: v for k, v in config.items() if k not in self._constants}
                worker.conn.send(("trial", trial_id, hyperparameters, str(self.trial_path(trial_id)), time.time()))
                worker.trial_id, worker.trial_started = trial_id, time.time()

    def _write_workers_file(self) -> None:
        record = {"n_workers": self.n_workers, "threads_per_worker": self.threads,
                  "shared_weights": self.supernet is not None, "not_shared_reason": self.not_shared_reason,
                  "replaced": self.replaced, "workers": [w.info for w in self.workers if w.ready]}
        partial = self.log_dir / (WORKERS_FILE + ".partial")  # written whole, then renamed: a reader never sees half
        partial.write_text(json.dumps(record, indent=2) + "\n")
        os.replace(partial, self.log_dir / WORKERS_FILE)

    def close(self) -> None:
        """Ask every worker to exit; kill the ones that do not within a few seconds."""
        self._closing = True
        for worker in self.workers:
            if worker.conn is not None:
                with contextlib.suppress(OSError):
                    worker.conn.send(("exit",))
        deadline = time.time() + 5
        for worker in self.workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.process.wait(timeout=max(0.1, deadline - time.time()))
            self._terminate(worker)
        if self.workers:
            self._write_workers_file()
        if self._listener is not None:
            self._listener.close()
        self.workers = []
        self.supernet = None

    def wait(self, timeout: float) -> None:
        """Return when a worker sends a message (a trial done, a worker ready or gone) or after ``timeout``
        seconds. The Tuner sleeps on this (``search.callbacks.SearchTuner``, through the pool's ``SearchBackend``) instead of a fixed 0.2 s, so a worker that
        finishes gets its next trial at once: with ~1 s evaluations the fixed sleep alone cost ~10%."""
        connections = [w.conn for w in self.workers if w.conn is not None]
        if not connections:
            time.sleep(timeout)
            return
        wait_for_messages(connections, timeout)
        self._supervise()  # take the messages now, so that a waiting one does not wake the next wait at once

    def worker_pids(self) -> list[int]:
        return [w.process.pid for w in self.workers]

    # ---- what LocalBackend delegates to a process ---------------------------------------------------
    def _schedule(self, trial_id: int, config: dict[str, Any]) -> None:
        trial_path = self.trial_path(trial_id)
        os.makedirs(trial_path, exist_ok=True)
        for name in ("std.out", "std.err"):
            (trial_path / name).touch()
        dump_json_with_numpy(config, str(trial_path / "config.json"))
        self._exit_codes.pop(trial_id, None)
        self._pending.append((trial_id, config))
        self._busy_trial_id_candidates.add(trial_id)
        self._supervise()

    def _running(self, trial_id: int) -> bool:
        return any(w.trial_id == trial_id for w in self.workers) or any(t == trial_id for t, _ in self._pending)

    def _read_status(self, trial_id: int):
        self._supervise()
        if self._file_path(trial_id=trial_id, filename="stop").exists():
            return Status.stopped
        if self._file_path(trial_id=trial_id, filename="pause").exists():
            return Status.paused
        code = self._exit_codes.get(trial_id)
        if code is None:
            return Status.in_progress
        return Status.completed if code == 0 else Status.failed

    def _is_process_done(self, trial_id: int) -> bool:
        return not self._running(trial_id)

    def _kill_process(self, trial_id: int) -> None:
        # a queued trial is dropped; a running one sees its stop/pause file after its next report
        self._pending = deque((t, c) for t, c in self._pending if t != trial_id)

    def __str__(self) -> str:
        gpus = sorted({gpu for gpu in self.gpus if gpu is not None})
        return f"pool of {self.n_workers} workers ({self.threads} threads each{', on GPUs ' + ','.join(gpus) if gpus else ''})"


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "exit status unknown"
    if code < 0:
        name = signal.Signals(-code).name
        hint = ", e.g. killed or out of memory" if -code == signal.SIGKILL else ""
        return f"signal {name}{hint}"
    return f"exit code {code}"
