"""SageMaker training jobs on boto3, apart from what runs in them: the job settings and their command-line
options, S3 locations, content-addressed uploads, what a job and its entry script agree on, and AWS failures
as one line. The search's SageMaker backend (``syne_prune.search``, ``--backend sagemaker``) and the
launchers (``launchers/``, ``syne_prune.cli.sagemaker``) build their jobs on it.

- **Settings** (``SageMakerSettings``): role, region, instance type/count, S3 prefix, image, spot with
  ``max_wait``, tags, VPC, warm pools (keep-alive), FastFile input. ``check()`` refuses bad input before any
  job is created (role ARN, region, instance type).
- **Uploads, once** (``Uploader``): the source (this package + an entry script + requirements) as
  ``sourcedir.tar.gz`` and every input channel go to ``S3_PREFIX/content/NAME-SHA``: the key holds the
  sha256 of the content, so an upload already there (marked complete) is skipped, across searches too.
- **A job's contract** (``jobs``): a constant that names an uploaded local directory travels as
  ``sm-channel:NAME`` (the entry script resolves it to ``SM_CHANNEL_NAME``); a configuration with more values
  than a job may have travels as JSON split over ``syne_prune_config_K`` hyperparameters; the entry script's
  last log line is ``JOB_END_MARKER``.

Credentials are whatever boto3 finds (profile, environment, instance role); none is ever printed or written.

Modules: ``settings``, ``calls`` (errors, S3 names, polling), ``jobs``, ``uploads``.
"""
from __future__ import annotations

from syne_prune.aws.calls import S3_URI, aws_error, log_grace_s, naive_time, s3_join, wait_between_polls
from syne_prune.aws.jobs import (
    CHANNEL_PREFIX,
    CHECKPOINT_LOCAL_PATH,
    ENTRY_SCRIPT,
    JOB_END_MARKER,
    MAX_HYPERPARAMETER_CHARS,
    MAX_HYPERPARAMETERS,
    MODEL_DIR,
    PACKED_CONFIG,
    in_model_dir,
    pack_hyperparameters,
    resolve_channel,
    unpack_hyperparameters,
)
from syne_prune.aws.settings import (
    DEFAULT_FRAMEWORK_VERSION,
    ROLE_ARN,
    SAGEMAKER_OPTIONS,
    SageMakerSettings,
    add_sagemaker_arguments,
    sagemaker_settings,
    training_instance_types,
)
from syne_prune.aws.uploads import REQUIREMENTS, Uploader, directory_digest, source_tarball

__all__ = [
    "CHANNEL_PREFIX", "CHECKPOINT_LOCAL_PATH", "DEFAULT_FRAMEWORK_VERSION", "ENTRY_SCRIPT", "JOB_END_MARKER",
    "MAX_HYPERPARAMETERS", "MAX_HYPERPARAMETER_CHARS", "MODEL_DIR", "PACKED_CONFIG", "REQUIREMENTS", "ROLE_ARN", "S3_URI",
    "SAGEMAKER_OPTIONS", "SageMakerSettings", "Uploader", "add_sagemaker_arguments", "aws_error", "directory_digest", "in_model_dir",
    "log_grace_s", "naive_time", "pack_hyperparameters", "resolve_channel", "s3_join", "sagemaker_settings", "source_tarball",
    "training_instance_types", "unpack_hyperparameters", "wait_between_polls",
]
