"""``syne-prune --version`` prints the one version the package has: setup.py's metadata and CHANGELOG.md's newest entry."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import syne_prune
from syne_prune.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _setup_version() -> str:
    """The version setup.py gives the distribution (``python setup.py --version``, the last line it prints)."""
    run = subprocess.run([sys.executable, "setup.py", "--version"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout.strip().splitlines()[-1]


def _changelog_version() -> str:
    """The newest released version of CHANGELOG.md (its first ``## [X.Y.Z] - date`` heading; Unreleased is skipped)."""
    versions = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$", (ROOT / "CHANGELOG.md").read_text(), flags=re.MULTILINE)
    assert versions, "CHANGELOG.md has no released version"
    return versions[0]


def test_version_is_printed_and_exits_0(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"syne-prune {syne_prune.__version__}\n"


def test_version_equals_setup_metadata_and_the_changelog():
    assert syne_prune.__version__ == _setup_version() == _changelog_version()
