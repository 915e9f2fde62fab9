"""SageMaker trial backend (``--backend sagemaker``; Syne Tune 0.16 has none since 0.14): one training job per trial, on boto3.

- **Settings** (``SageMakerSettings``): role, region, instance type/count, S3 prefix, image, spot with
  ``max_wait``, tags, VPC, warm pools (keep-alive), FastFile input. ``check()`` refuses bad input
  before any job is created (role ARN, region, instance type, an S3 prefix that cannot be written).
- **Uploads, once**: the source (this package + an entry script + requirements) as
  ``sourcedir.tar.gz`` and every input channel (the super-network, GLUE files, a local pre-trained
  model) go to ``S3_PREFIX/content/NAME-SHA``: the key holds the sha256 of the content, so an upload
  already there (marked complete) is skipped, across searches too.
- **A trial** is a training job named ``{search}-{trial}-{attempt}``; its hyperparameters are the mask
  plus the search's constants; a constant that names an uploaded local directory is replaced by
  ``sm-channel:NAME``, which the entry script resolves to ``SM_CHANNEL_NAME``. Trials that train
  (standard NAS) get a per-trial ``checkpoint_s3_uri`` synced with ``/opt/ml/checkpoints``.
- **Status** from ``describe_training_job`` (one call per trial), **metrics** from the job's
  CloudWatch log lines (``[tune-metric]: {...}``, Syne Tune's report format), **stop** and **pause**
  with ``stop_training_job``, **resume** as a new job of the same trial on the same checkpoint URI
  (created once the previous job has stopped, so two jobs never share the checkpoint).
- **Logs arrive late**: CloudWatch may receive a job's last lines after ``describe_training_job``
  says it ended. A completed or failed job is reported as running until its entry script's last line
  (``JOB_END_MARKER``) has been read, or ``SYNE_PRUNE_SAGEMAKER_LOG_GRACE_S`` (default 120) seconds
  after it ended, so no final report is lost. Lines are read incrementally with CloudWatch's forward
  tokens; an expired token re-reads the stream and skips what was read. AWS calls retry with
  botocore's adaptive mode on throttling.
- **Many hyperparameters**: a configuration with more values than a job may have (the ``large``
  space) travels as JSON split over ``syne_prune_config_K`` hyperparameters of at most 2500 characters.

Credentials are whatever boto3 finds (profile, environment, instance role); none is ever printed or
written to results.

Modules: ``settings`` (``SageMakerSettings`` and their command-line options), ``aws`` (errors, S3 names,
polling), ``jobs`` (what a job and its entry script agree on), ``uploads``, ``backend`` (the Syne Tune
trial backend), ``entry`` (what a job runs), ``launcher`` (one job running ``syne-prune``; its command line, and what such a job runs, are in
``syne_prune.cli.sagemaker`` and ``syne_prune.cli.sagemaker_job``). The search's
registry entry (``--backend sagemaker``) is ``syne_prune.search.backends.sagemaker``.
"""
from __future__ import annotations

from syne_prune.search.sagemaker.aws import S3_URI, aws_error, log_grace_s, s3_join, wait_between_polls
from syne_prune.search.sagemaker.backend import LOG_GROUP, MAX_WAIT_FOR_STOP_S, SageMakerBackend
from syne_prune.search.sagemaker.jobs import (
    CHANNEL_PREFIX,
    CHECKPOINT_LOCAL_PATH,
    ENTRY_SCRIPT,
    JOB_END_MARKER,
    MAX_HYPERPARAMETER_CHARS,
    MAX_HYPERPARAMETERS,
    PACKED_CONFIG,
    pack_hyperparameters,
    unpack_hyperparameters,
)
from syne_prune.search.sagemaker.launcher import CHANNEL_FLAGS, MODEL_DIR, launch_cli_job
from syne_prune.search.sagemaker.settings import (
    DEFAULT_FRAMEWORK_VERSION,
    ROLE_ARN,
    SAGEMAKER_OPTIONS,
    SageMakerSettings,
    add_sagemaker_arguments,
    sagemaker_settings,
    training_instance_types,
)
from syne_prune.search.sagemaker.uploads import REQUIREMENTS, Uploader, directory_digest, source_tarball

__all__ = [
    "CHANNEL_FLAGS", "CHANNEL_PREFIX", "CHECKPOINT_LOCAL_PATH", "DEFAULT_FRAMEWORK_VERSION", "ENTRY_SCRIPT", "JOB_END_MARKER",
    "LOG_GROUP", "MAX_HYPERPARAMETERS", "MAX_HYPERPARAMETER_CHARS", "MAX_WAIT_FOR_STOP_S", "MODEL_DIR", "PACKED_CONFIG",
    "REQUIREMENTS", "ROLE_ARN", "S3_URI", "SAGEMAKER_OPTIONS", "SageMakerBackend", "SageMakerSettings", "Uploader",
    "add_sagemaker_arguments", "aws_error", "directory_digest", "launch_cli_job", "log_grace_s",
    "pack_hyperparameters", "s3_join", "sagemaker_settings", "source_tarball", "training_instance_types",
    "unpack_hyperparameters", "wait_between_polls",
]
