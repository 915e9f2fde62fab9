"""ruff (configured in ruff.toml: pycodestyle errors and warnings, pyflakes, import order) finds nothing in the
package, the tests, the benchmarks and the launchers."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PATHS = ["syne_prune", "tests", "benchmarks", "launchers"]


def _ruff() -> list[str] | None:
    """The ruff command: the one installed next to this Python, else on PATH; None when there is none."""
    beside = Path(sys.executable).with_name("ruff")
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("ruff")
    return [found] if found else None


def test_ruff_finds_nothing():
    ruff = _ruff()
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]' installs it)")
    run = subprocess.run([*ruff, "check", "--no-cache", "--output-format", "concise", *PATHS], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
