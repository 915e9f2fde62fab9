"""Imported first by ``syne_prune``: Syne Tune's import sets ``OMP_NUM_THREADS=1`` in the environment when it is
unset (``syne_tune/backend/local_backend.py``), so every process started after it (a benchmark's or quickstart's
training and pruning steps) would run torch on one thread: on 2 cores a training step took 1.72x as long
(MiniLM, batch 32 x 64 tokens). Unless the user set it, it is taken back here; trial processes get their share of
the cores from their backend instead (``search/backends/pool/``, ``search/backends/local.py``)."""
from __future__ import annotations

import os

_GIVEN = "OMP_NUM_THREADS" in os.environ
import syne_tune  # noqa: E402,F401

if not _GIVEN:
    os.environ.pop("OMP_NUM_THREADS", None)
