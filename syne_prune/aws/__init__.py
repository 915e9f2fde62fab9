"""SageMaker training jobs on boto3, apart from what runs in them: the job settings and their command-line
options, S3 locations, content-addressed uploads, what a job and its entry script agree on, and AWS failures
as one line. The search's SageMaker backend (``syne_prune.search``, ``--backend sagemaker``) and the
launchers (``launchers/``, ``syne_prune.cli.sagemaker``) build their jobs on it.

- **Settings** (``SageMakerSettings``): role, region, instance type/count, S3 prefix, image, spot with
  ``max_wait``, tags, VPC, warm pools (keep-alive), FastFile input. ``check()`` refuses bad input before any
  job is created (role ARN, region, instance type, tags, keep-alive and VPC ids within SageMaker's model).
- **Every call one way** (``call_aws``): the request checked against botocore's service model as AWS checks it
  (``request_problems``: maximum lengths, enums and patterns too, which botocore leaves to AWS), a failure as one
  ``AwsError`` line with AWS's code; ``WAIT_AND_RETRY`` names the refusals worth waiting out.
- **The job's software** (``environment``): the default PyTorch training image, checked against the torch that
  syne-prune and its pinned packages need (``check_framework``), and requirements.txt pinning this machine's
  versions (``job_requirements``); with ``--image-uri`` the image runs as it is.
- **Uploads, once** (``Uploader``): the source (this package + an entry script + requirements) as
  ``sourcedir.tar.gz`` and every input channel go to ``S3_PREFIX/content/NAME-SHA``: the key holds the
  sha256 of the content, so an upload already there (marked complete) is skipped, across searches too.
- **A job's contract** (``jobs``): a constant that names an uploaded local directory travels as
  ``sm-channel:NAME`` (the entry script resolves it to ``SM_CHANNEL_NAME``); a configuration with more values
  than a job may have travels as JSON split over ``syne_prune_config_K`` hyperparameters; the entry script's
  last log line is ``JOB_END_MARKER``.

Credentials are whatever boto3 finds (profile, environment, instance role); none is ever printed or written.

Modules: ``settings``, ``calls`` (the call path, errors, S3 names, polling), ``service_model`` (requests read
against botocore's model), ``environment``, ``jobs``, ``uploads``.
"""
from __future__ import annotations

from syne_prune.aws.calls import (
    INVALID_REQUEST,
    S3_URI,
    THROTTLING,
    WAIT_AND_RETRY,
    AwsError,
    aws_error,
    call_aws,
    capacity_wait_s,
    log_grace_s,
    naive_time,
    one_line,
    s3_join,
    wait_between_polls,
)
from syne_prune.aws.environment import (
    DEFAULT_FRAMEWORK_VERSION,
    FRAMEWORK_PY_VERSION,
    JOB_DEPENDENCIES,
    TORCH_REQUIREMENT,
    check_framework,
    job_requirements,
    torch_requirements,
)
from syne_prune.aws.jobs import (
    CHANNEL_PREFIX,
    CHECKPOINT_LOCAL_PATH,
    ENTRY_SCRIPT,
    JOB_END_MARKER,
    MAX_HYPERPARAMETER_CHARS,
    MAX_HYPERPARAMETERS,
    MODEL_DIR,
    PACKED_CONFIG,
    TASK_CHANNEL,
    in_model_dir,
    job_compute_environment,
    pack_hyperparameters,
    requested_compute,
    resolve_channel,
    unpack_hyperparameters,
)
from syne_prune.aws.service_model import pattern_matches, request_problems, shape_limits
from syne_prune.aws.settings import (
    ROLE_ARN,
    SAGEMAKER_OPTIONS,
    SageMakerSettings,
    add_sagemaker_arguments,
    check_tags,
    sagemaker_model_client,
    sagemaker_settings,
    training_instance_types,
)
from syne_prune.aws.uploads import Uploader, copy_prefix, delete_prefix, directory_digest, list_keys, source_tarball

__all__ = [
    "add_sagemaker_arguments", "aws_error", "AwsError", "call_aws", "capacity_wait_s", "CHANNEL_PREFIX", "TASK_CHANNEL",
    "check_framework", "check_tags", "CHECKPOINT_LOCAL_PATH", "copy_prefix", "DEFAULT_FRAMEWORK_VERSION",
    "delete_prefix", "directory_digest", "ENTRY_SCRIPT", "FRAMEWORK_PY_VERSION", "in_model_dir", "INVALID_REQUEST",
    "JOB_DEPENDENCIES", "JOB_END_MARKER", "job_compute_environment", "job_requirements", "list_keys", "log_grace_s", "MAX_HYPERPARAMETER_CHARS",
    "MAX_HYPERPARAMETERS", "MODEL_DIR", "naive_time", "one_line", "pack_hyperparameters", "PACKED_CONFIG",
    "pattern_matches", "request_problems", "requested_compute", "resolve_channel", "ROLE_ARN", "s3_join", "S3_URI",
    "sagemaker_model_client", "SAGEMAKER_OPTIONS", "sagemaker_settings", "SageMakerSettings", "shape_limits",
    "source_tarball", "THROTTLING", "TORCH_REQUIREMENT", "torch_requirements", "training_instance_types",
    "unpack_hyperparameters", "Uploader", "WAIT_AND_RETRY", "wait_between_polls",
]
