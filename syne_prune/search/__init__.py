"""Multi-objective search over sub-networks with Syne Tune: what other parts of syne_prune (the command line,
the blackbox benchmarks, quickstart, benchmarks/) may use. Everything else in this package is its own.

- running a search: ``SearchConfig``, ``run_search``; choosing and exporting a trial: ``choose_trial``,
  ``export_from_search``; what a search derives from its ledger: ``read_parts``, ``hypervolume_over_time``;
- the plugins: ``TRIAL_KINDS`` (with their settings ``WeightSharingSettings``, ``FineTuneSettings``),
  ``BACKENDS`` (``PoolSettings``; SageMaker's settings are ``syne_prune.aws.SageMakerSettings``), ``SCHEDULERS`` (a searcher
  joins it through ``single_fidelity``);
- the pieces a replay of a search reuses: ``make_scheduler``, ``NoRepeatScheduler``, ``subnetwork_key``,
  ``Evaluator`` and ``TrialSettings`` (what a weight-sharing trial runs), ``FIDELITY_ATTR``, ``MULTI_FIDELITY``,
  ``OBJECTIVES``, ``TEST_SPLITS``, ``QuietTunerLogger``, ``no_best_metric_table``, ``PoolBackend``;
- SageMaker jobs of syne-prune: ``launch_cli_job`` (one job running ``syne-prune ARGV``) and ``run_sagemaker_job``
  (what such a job runs, given its extra entries).
"""
from __future__ import annotations

from syne_prune.search.backends import BACKENDS, get_backend
from syne_prune.search.backends.pool import PoolSettings
from syne_prune.search.backends.pool.workers import PoolBackend
from syne_prune.search.backends.sagemaker import launch_cli_job
from syne_prune.search.backends.sagemaker import run_job as run_sagemaker_job
from syne_prune.search.choose import choose_trial, export_from_search
from syne_prune.search.config import TEST_SPLITS, SearchConfig
from syne_prune.search.finetune import FineTuneSettings
from syne_prune.search.kinds import TRIAL_KINDS, WeightSharingSettings, get_trial_kind
from syne_prune.search.protocol import OBJECTIVES
from syne_prune.search.results import hypervolume_over_time, read_parts
from syne_prune.search.run import run_search
from syne_prune.search.schedulers import FIDELITY_ATTR, MULTI_FIDELITY, SCHEDULERS, SchedulerFactory, make_scheduler, single_fidelity
from syne_prune.search.scheduling import NoRepeatScheduler, subnetwork_key
from syne_prune.search.syne_tune_fixes import QuietTunerLogger, no_best_metric_table
from syne_prune.search.trial import Evaluator, TrialSettings

__all__ = [
    "BACKENDS", "FIDELITY_ATTR", "MULTI_FIDELITY", "OBJECTIVES", "SCHEDULERS", "TEST_SPLITS", "TRIAL_KINDS", "Evaluator",
    "FineTuneSettings", "NoRepeatScheduler", "PoolBackend", "PoolSettings", "QuietTunerLogger", "SchedulerFactory", "SearchConfig", "TrialSettings",
    "WeightSharingSettings", "choose_trial", "export_from_search", "get_backend", "get_trial_kind", "hypervolume_over_time",
    "launch_cli_job", "make_scheduler", "no_best_metric_table", "read_parts", "run_sagemaker_job", "run_search", "single_fidelity", "subnetwork_key",
]
