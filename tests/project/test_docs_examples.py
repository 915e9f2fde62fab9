"""Every example of docs/extending.md runs: each file under docs/examples/ (a family, a scheduler, a backend, a trial
kind, a baseline, a task and metric) registers its extension, exercises it on a tiny model and checks the outcome
with its own asserts; the test runs the file in a fresh interpreter and reads the line the example prints last."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"

# example file -> the start of the last line it prints once its checks passed
EXPECTED = {
    "extend_family.py": "camembert: extraction equals masking on 5 random sub-networks",
    "extend_scheduler.py": "greedy: 8 trials",
    "extend_backend.py": "local-quiet: 2 trials",
    "extend_trial_kind.py": "weight-sharing-audit: 5 trials, each with a test error",
    "extend_baseline.py": "uniform at 0.6: params",
    "extend_task.py": "synthetic_length: the unpruned super-network's validation balanced accuracy is",
}


def test_every_example_file_is_run_by_this_test():
    assert sorted(p.name for p in EXAMPLES.glob("extend_*.py")) == sorted(EXPECTED)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_extending_example_runs(name, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error", "TMPDIR": str(tmp_path)}
    run = subprocess.run([sys.executable, str(EXAMPLES / name)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    last = run.stdout.strip().splitlines()[-1]
    assert last.startswith(EXPECTED[name]), run.stdout[-2000:]
