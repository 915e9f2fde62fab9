"""Devices: ``--device`` resolution and its one-line errors, and which GPU each search worker gets (the pure rule, the
pool's worker count and each worker's environment), on a machine with GPUs made up by patching torch's counts."""
from __future__ import annotations

import pytest
import torch
from helpers import fails

from syne_prune import SynePruneError
from syne_prune.devices import (
    DEVICE_ENV,
    VISIBLE_ENV,
    default_device,
    default_workers,
    gpu_assignment,
    resolve_device,
    use_device,
    visible_gpus,
    worker_environment,
    worker_gpus,
)
from syne_prune.search import SearchConfig, WeightSharingSettings, trial
from syne_prune.search.backends.local import rotates_gpus
from syne_prune.search.backends.pool import PoolSettings
from syne_prune.search.backends.pool.workers import PoolBackend
from syne_prune.search.trial import TrialSettings


@pytest.fixture
def gpus(monkeypatch):
    """A machine whose torch sees ``n`` GPUs (call the fixture's value with n); nothing runs on them."""
    monkeypatch.delenv(VISIBLE_ENV, raising=False)
    monkeypatch.delenv(DEVICE_ENV, raising=False)

    def machine(n: int) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)

    return machine


def test_auto_is_the_cpu_without_a_gpu_and_the_gpu_with_one(gpus):
    gpus(0)
    assert resolve_device("auto") == torch.device("cpu") == default_device()
    gpus(2)
    assert resolve_device("auto") == torch.device("cuda") and resolve_device("cuda:1") == torch.device("cuda:1")
    assert resolve_device("CPU") == torch.device("cpu")


def test_bad_devices_are_one_line_errors(gpus):
    gpus(0)
    with pytest.raises(SynePruneError, match=r"--device cuda: torch sees no GPU .*; use --device cpu, or install a CUDA build of torch"):
        resolve_device("cuda")
    with pytest.raises(SynePruneError, match=r"unknown --device 'tpu'; choose one of auto, cpu, cuda, cuda:N"):
        resolve_device("tpu")
    gpus(2)
    with pytest.raises(SynePruneError, match=r"--device cuda:2: torch sees 2 GPU\(s\) \(cuda:0 to cuda:1\); pick one of them"):
        resolve_device("cuda:2")


def test_cli_device_cuda_without_a_gpu_exits_2_with_one_line(gpus, capsys, tmp_path):
    gpus(0)
    fails(capsys, ["train-supernet", "--model", "m", "--task", "rte", "--output", str(tmp_path / "out"), "--device", "cuda"],
          "--device cuda: torch sees no GPU")
    assert not (tmp_path / "out").exists()


def test_use_device_sets_the_run_choice_for_child_processes_and_restores_it(gpus, monkeypatch):
    gpus(1)
    import os

    with use_device("cpu") as device:
        assert device == torch.device("cpu") == default_device() and os.environ[DEVICE_ENV] == "cpu"
        with use_device("auto"):  # auto keeps the enclosing choice
            assert default_device() == torch.device("cpu")
    assert DEVICE_ENV not in os.environ and default_device() == torch.device("cuda")


@pytest.mark.parametrize("num_gpus, workers, expected", [
    (1, 1, ["0"]),
    (2, 2, ["0", "1"]),
    (8, 8, ["0", "1", "2", "3", "4", "5", "6", "7"]),
    (2, 3, ["0", "1", "0"]),  # 3 workers on 2 GPUs: the first two never share while a GPU is free
    (0, 2, [None, None]),  # no GPU: every worker on the CPU
])
def test_worker_to_gpu_assignment(num_gpus, workers, expected):
    assert gpu_assignment(workers, visible_gpus({}, num_gpus)) == expected


def test_each_worker_sees_only_its_gpu_and_cpu_workers_stay_on_the_cpu():
    cuda = torch.device("cuda")
    assert [worker_environment(gpu, cuda) for gpu in gpu_assignment(3, ["0", "1"])] == [
        {VISIBLE_ENV: "0", DEVICE_ENV: "cuda"}, {VISIBLE_ENV: "1", DEVICE_ENV: "cuda"}, {VISIBLE_ENV: "0", DEVICE_ENV: "cuda"}]
    assert worker_environment(None, torch.device("cpu")) == {DEVICE_ENV: "cpu"}
    assert worker_environment("3", torch.device("cpu")) == {DEVICE_ENV: "cpu"}  # --device cpu on a GPU machine


def test_the_gpus_a_run_spreads_over():
    assert visible_gpus({VISIBLE_ENV: "4, 6"}) == ["4", "6"]  # the parent's own restriction is kept
    assert worker_gpus(torch.device("cuda"), {VISIBLE_ENV: "4,6"}) == ["4", "6"]
    assert worker_gpus(torch.device("cuda:1"), {VISIBLE_ENV: "4,6"}) == ["6"]
    assert worker_gpus(torch.device("cuda:1"), {}, count=8) == ["1"]
    assert worker_gpus(torch.device("cpu"), {}, count=8) == []


def test_default_worker_count():
    assert [default_workers(g, 1, 2) for g in (0, 1, 2, 8)] == [2, 1, 2, 8]
    assert default_workers(2, 3, 2) == 6
    with pytest.raises(SynePruneError, match="--workers-per-gpu must be at least 1, got 0"):
        default_workers(2, 0, 2)


@pytest.mark.parametrize("num_gpus, per_gpu, expected", [(0, 1, 2), (1, 1, 1), (2, 1, 2), (8, 1, 8), (2, 2, 4)])
def test_the_pool_starts_workers_per_gpu_unless_n_workers_is_given(gpus, num_gpus, per_gpu, expected):
    gpus(num_gpus)
    settings = PoolSettings(workers_per_gpu=per_gpu)
    config = SearchConfig(trial_settings=WeightSharingSettings("unused"), output="unused", max_trials=1, backend_settings=settings)
    assert config.n_workers == expected
    given = SearchConfig(trial_settings=WeightSharingSettings("unused"), output="unused", max_trials=1, n_workers=3, backend_settings=settings)
    assert given.n_workers == 3
    with use_device("cpu"):  # --device cpu on a GPU machine: the CPU default
        assert SearchConfig(trial_settings=WeightSharingSettings("unused"), output="unused", max_trials=1).n_workers == 2


def test_workers_per_gpu_is_checked():
    with pytest.raises(SynePruneError, match="--workers-per-gpu must be a positive integer, got 0"):
        PoolSettings(workers_per_gpu=0).check()


def test_pool_workers_get_their_gpu_in_their_environment(gpus, tmp_path):
    gpus(2)
    pool = PoolBackend(TrialSettings("unused"), 3, tmp_path, entry_point=trial.__file__, threads=4, device=torch.device("cuda"))
    assert [pool.environment_of(i) for i in range(3)] == [
        {"OMP_NUM_THREADS": "4", VISIBLE_ENV: "0", DEVICE_ENV: "cuda"},
        {"OMP_NUM_THREADS": "4", VISIBLE_ENV: "1", DEVICE_ENV: "cuda"},
        {"OMP_NUM_THREADS": "4", VISIBLE_ENV: "0", DEVICE_ENV: "cuda"}]
    assert "on GPUs 0,1" in str(pool)
    on_cpu = PoolBackend(TrialSettings("unused"), 2, tmp_path, entry_point=trial.__file__, threads=1)
    assert [on_cpu.environment_of(i) for i in range(2)] == [{"OMP_NUM_THREADS": "1", DEVICE_ENV: "cpu"}] * 2


def test_the_local_backend_rotates_gpus_only_over_every_visible_one():
    assert rotates_gpus(torch.device("cuda")) and not rotates_gpus(torch.device("cuda:1")) and not rotates_gpus(torch.device("cpu"))
