"""Benchmarking schedulers on a tabulated blackbox of evaluated sub-networks (see format.py for the file)."""
from __future__ import annotations

from syne_prune.blackbox.benchmark import BenchmarkConfig, run_benchmark
from syne_prune.blackbox.format import Blackbox, read_blackbox
from syne_prune.blackbox.record import RecordConfig, record_from_trials, record_samples
from syne_prune.blackbox.surrogate import SURROGATES

__all__ = ["SURROGATES", "BenchmarkConfig", "Blackbox", "RecordConfig", "read_blackbox", "record_from_trials", "record_samples", "run_benchmark"]
