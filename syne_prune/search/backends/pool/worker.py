"""The worker side of ``--backend pool`` (``pool.PoolBackend``): a process that receives the settings and the
shared super-network once, then evaluates the trials it is handed, writing what a LocalBackend trial
process would write (``std.out`` with the reports, ``std.err`` with the failure line)."""
from __future__ import annotations

import contextlib
import os
import sys
import time
from multiprocessing import current_process
from multiprocessing.connection import Client
from pathlib import Path
from typing import Any

import psutil
import torch
import torch.multiprocessing  # noqa: F401 - registers the reductions that rebuild shared tensors
from syne_tune import Reporter

from syne_prune.search.protocol import failure_line
from syne_prune.search.trial import make_evaluator  # with it the data, evaluation, super-network and surgery code

AUTHKEY_ENV = "SYNE_PRUNE_POOL_AUTHKEY"


def _uss_mb() -> float:
    """Memory only this process holds (unique set size), in MiB."""
    process = psutil.Process()
    try:
        return process.memory_full_info().uss / 2**20
    except (psutil.AccessDenied, AttributeError):  # pragma: no cover
        return process.memory_info().rss / 2**20


class _TrialStopped(Exception):
    """The Tuner stopped or paused the running trial (a ``stop``/``pause`` file appeared)."""


def _run_trial(evaluator, trial_id: int, config: dict[str, Any], trial_dir: Path, dispatched_at: float) -> int:
    """Evaluate one trial inside a worker, writing what a LocalBackend trial process would write."""
    with open(trial_dir / "std.out", "a") as out, open(trial_dir / "std.err", "a") as err, \
            contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            reporter = Reporter()
            setup_s = time.time() - dispatched_at  # hand-over from the Tuner to this worker

            def report(result: dict[str, Any]) -> None:
                if "eval_s" in result:
                    result = {**result, "setup_s": setup_s}
                reporter(**result)
                if (trial_dir / "stop").exists() or (trial_dir / "pause").exists():
                    raise _TrialStopped()

            evaluator.evaluate(config, report)
            return 0
        except _TrialStopped:
            return 0
        except Exception as error:  # noqa: BLE001 - any failure becomes a failed trial with its reason
            print(failure_line(error), file=sys.stderr, flush=True)
            return 1


def worker_main(address: str) -> None:
    """A pool worker (``python -m syne_prune.search.backends.pool.worker ADDRESS``): connect to the backend, receive the
    settings and the super-network (or load it), then evaluate trials until told to exit."""
    key = bytes.fromhex(os.environ.pop(AUTHKEY_ENV))
    current_process().authkey = key  # shared tensors arrive through multiprocessing's fd sharer, which checks it
    conn = Client(address, authkey=key)
    conn.send(os.getpid())
    try:
        memory_before = _uss_mb()  # after the imports: the difference is what the super-network and data add
        settings, threads, supernet = conn.recv()  # supernet: in shared memory, or None: load it here
        torch.set_num_threads(threads)
        evaluator = make_evaluator(settings, supernet=supernet)
        memory_after = _uss_mb()
    except EOFError:
        return  # the backend is gone
    except Exception as error:  # noqa: BLE001 - reported to the backend, which stops the search
        conn.send(("startup_failed", failure_line(error)))
        return
    conn.send(("ready", {"pid": os.getpid(), "threads": threads, "shared_weights": supernet is not None,
                         "uss_before_supernet_mb": memory_before, "uss_after_supernet_mb": memory_after}))
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return  # the backend is gone (killed): do not linger
        if message[0] == "exit":
            return
        _, trial_id, config, trial_dir, dispatched_at = message
        code = _run_trial(evaluator, trial_id, config, Path(trial_dir), dispatched_at)
        conn.send(("done", trial_id, code))


if __name__ == "__main__":
    worker_main(sys.argv[1])
