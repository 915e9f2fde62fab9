"""The documentation site builds without a warning: ``mkdocs build --strict`` over mkdocs.yml (pages, snippets of
docs/examples, the API reference mkdocstrings generates from the docstrings). Skipped only when the docs extra
(``pip install -e '.[docs]'``, part of the test extra) is not installed."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_mkdocs_build_is_strict_clean(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    pytest.importorskip("mkdocstrings")
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"),
                          "--site-dir", str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr[-3000:]
    reference = (tmp_path / "site" / "reference" / "index.html").read_text(encoding="utf-8")
    assert "extract_subnetwork" in reference and "run_search" in reference  # the API reference was generated
    extending = (tmp_path / "site" / "extending" / "index.html").read_text(encoding="utf-8")
    assert "GreedySearcher" in extending and "--8&lt;--" not in extending  # the examples were included, not quoted
