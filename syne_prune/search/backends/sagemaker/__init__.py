"""``--backend sagemaker``: one SageMaker training job per trial (Syne Tune 0.16 has no SageMaker backend), built on
the job plumbing of ``syne_prune.aws`` (settings, uploads, the job contract).

- **A trial** is a training job named ``{search}-{trial}-{attempt}``; its hyperparameters are the mask plus the
  search's constants; a constant that names an uploaded local directory travels as ``sm-channel:NAME``. A user's
  task (``syne_prune.data.TaskSpec``) brings its data files: uploaded once, under the names of
  ``syne_prune.data.spec_files``, as the channel ``task``, which the job's ``task_files`` names; the job reads them
  there and checks each against the sha256 the task recorded (``syne_prune.data.relocate``). Trials
  that train (standard NAS) get a per-trial ``checkpoint_s3_uri`` synced with ``/opt/ml/checkpoints``.
- **Status** from ``describe_training_job`` (one call per trial), **metrics** from the job's CloudWatch log
  lines (``[tune-metric]: {...}``, Syne Tune's report format), **stop** and **pause** with
  ``stop_training_job``, **resume** as a new job of the same trial on the same checkpoint URI (created once the
  previous job has stopped, so two jobs never share the checkpoint).
- **Logs arrive late**: a completed or failed job is reported as running until its entry script's last line
  (``JOB_END_MARKER``) has been read, or ``SYNE_PRUNE_SAGEMAKER_LOG_GRACE_S`` (default 120) seconds after it
  ended, so no final report is lost.
- **Real AWS**: before any upload, the credentials, the bucket's region, the image and the form of a job request
  (against botocore's model of SageMaker) are checked (``preflight``). Every call goes through
  ``syne_prune.aws.call_aws`` (one line per failure). Throttling is retried by botocore (adaptive mode), then by
  the backend: a create that AWS refuses for now (throttling, ``ResourceLimitExceeded``) and a resumed trial whose
  previous job is still stopping are created at a later poll, never by waiting inside the Tuner's loop. When the
  search ends — finished, failed, interrupted or out of time — every job still running is stopped (``close``),
  and the jobs that could not be stopped are named on stderr.

Modules: ``trial_backend`` (``SageMakerBackend``, the Syne Tune trial backend), ``preflight``, ``cloudwatch`` (a
job's log lines), ``entry`` (what a job runs),
``launcher`` (one job running ``syne-prune ARGV``: super-network training, or a whole search in one job; the
command line of ``launchers/`` is ``syne_prune.cli.sagemaker``). This module is the registry entry, with the
settings (``syne_prune.aws.SageMakerSettings``) and options of ``--backend sagemaker``.
"""
from __future__ import annotations

import argparse
import re
import sys
import uuid
from pathlib import Path

from syne_tune.backend.trial_backend import TrialBackend

from syne_prune.aws import (
    CHANNEL_PREFIX,
    ENTRY_SCRIPT,
    JOB_END_MARKER,
    MAX_HYPERPARAMETER_CHARS,
    MAX_HYPERPARAMETERS,
    SAGEMAKER_OPTIONS,
    TASK_CHANNEL,
    SageMakerSettings,
    Uploader,
    add_sagemaker_arguments,
    requested_compute,
    sagemaker_settings,
    source_tarball,
    wait_between_polls,
)
from syne_prune.data import spec_files
from syne_prune.errors import SynePruneError
from syne_prune.search.backends.base import SearchBackend
from syne_prune.search.backends.sagemaker.cloudwatch import LOG_GROUP
from syne_prune.search.backends.sagemaker.entry import main as run_job
from syne_prune.search.backends.sagemaker.launcher import launch_cli_job
from syne_prune.search.backends.sagemaker.trial_backend import MAX_WAIT_FOR_STOP_S, SageMakerBackend

CHANNEL_OF = {"supernet": "supernet", "model": "model", "data_dir": "data"}  # constant -> input channel (a local directory)


class SageMakerSearchBackend(SearchBackend):
    """Checks S3 and uploads the source and the channels (each once) before the output folder is touched;
    a trial that trains keeps its weights at its ``checkpoint_s3_uri``."""

    name = "sagemaker"
    settings_type = SageMakerSettings
    default_test_split = "every-trial"  # a job scores its trial on the test split: no second pass here after the search
    start_jobs_without_delay = False  # a stopping job still holds its instance

    @classmethod
    def compute_record(cls) -> dict[str, str]:
        """What the run asked its jobs for (``syne_prune.aws.requested_compute``): each job resolves ``auto`` on its own
        instance, and gets the run's explicit ``--precision``/``--device`` in its environment."""
        return requested_compute()

    @classmethod
    def add_options(cls, parser: argparse.ArgumentParser) -> None:
        add_sagemaker_arguments(parser)

    @classmethod
    def settings_from_args(cls, args: argparse.Namespace, chosen: bool) -> SageMakerSettings | None:
        """SageMakerSettings from the SageMaker options (None when none is given and the backend is not ``chosen``).
        Raises SynePruneError for SageMaker options given with another backend, and for malformed --tags."""
        if not chosen and any(getattr(args, n) for n in SAGEMAKER_OPTIONS):
            raise SynePruneError("SageMaker options (--role, --region, --s3-prefix, ...) need --backend sagemaker")
        return sagemaker_settings(args) if chosen else None

    @classmethod
    def check(cls, config) -> None:
        super().check(config)
        if config.backend_settings is None:
            raise SynePruneError("--backend sagemaker needs --role, --region and --s3-prefix")
        config.backend_settings.check()

    @property
    def sleep_time(self) -> float:
        return wait_between_polls()

    def prepare(self) -> None:
        """A prepared SageMaker backend: S3 writable, source and channels uploaded (each once), image known."""
        settings = self.config.backend_settings
        channels: dict[str, str | dict[str, Path]] = {CHANNEL_OF[key]: str(value) for key, value in self.prepared.constants.items()
                                                       if key in CHANNEL_OF and value and Path(str(value)).is_dir()}
        data_files = spec_files(self.prepared.task)  # the user's data files, uploaded once beside the super-network
        copies = getattr(self.prepared.trial_settings, "task_files", None)  # search --data-dir: where they are now
        if copies:
            data_files = {name: Path(copies) / name for name in data_files}
        if data_files:
            channels[TASK_CHANNEL] = data_files
        if settings.instance_count != 1:
            raise SynePruneError("--instance-count above 1: a trial is not distributed, every host would run it; use --n-workers for parallel trials")
        name = f"sp-{re.sub(r'[^a-zA-Z0-9-]', '-', self.output.resolve().name)[:24]}-{uuid.uuid4().hex[:10]}"  # unique per account and region
        self.trial_backend = SageMakerBackend(settings, self.kind.sagemaker_entry, channels, checkpointing=self.kind.trains_per_trial,
                                              job_prefix=name, constants={"task_files": CHANNEL_PREFIX + TASK_CHANNEL} if data_files else {})
        self.trial_backend.prepare()

    def _make_trial_backend(self, part_dir: Path) -> TrialBackend:
        return self.trial_backend

    def close(self) -> None:
        """Stop every job of the search still running (also when the Tuner never got to it); name on stderr, in one
        line, the jobs AWS did not let us stop: they keep running, and billing, until stopped by hand."""
        if self.trial_backend is None:
            return
        self.trial_backend.stop_all()
        unstopped = self.trial_backend.unstopped
        if unstopped:
            print(f"error: {len(unstopped)} SageMaker training job(s) could not be stopped and may still run (and bill): "
                  f"{', '.join(unstopped)} ({next(iter(unstopped.values()))}); stop them in the SageMaker console or with "
                  "aws sagemaker stop-training-job --training-job-name NAME", file=sys.stderr, flush=True)

    def checkpoint(self, trial_id: int) -> str:
        return self.trial_backend.checkpoint_uri(trial_id)


__all__ = [  # the registry entry, and what a SageMaker job of a search is made of
    "ENTRY_SCRIPT", "JOB_END_MARKER", "LOG_GROUP", "MAX_HYPERPARAMETERS", "MAX_HYPERPARAMETER_CHARS", "MAX_WAIT_FOR_STOP_S",
    "SageMakerBackend", "SageMakerSearchBackend", "SageMakerSettings", "Uploader", "launch_cli_job", "run_job", "source_tarball",
]
