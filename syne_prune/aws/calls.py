"""AWS calls of SageMaker jobs: boto3 failures as one line, S3 locations, polling intervals."""
from __future__ import annotations

import os
import re
from datetime import datetime

from syne_prune.errors import SynePruneError

S3_URI = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/.*)?$")


def aws_error(error: Exception, doing: str) -> SynePruneError:
    """A boto3/botocore failure as one line (never with credentials)."""
    from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError  # optional (syne-prune[sagemaker])

    if isinstance(error, NoCredentialsError):
        return SynePruneError(f"{doing}: no AWS credentials found; configure them (aws configure, AWS_PROFILE or an instance role)")
    if isinstance(error, NoRegionError):
        return SynePruneError(f"{doing}: no region; pass --region")
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        return SynePruneError(f"{doing}: {info.get('Code', 'error')}: {info.get('Message', '')}".rstrip(": "))
    return SynePruneError(f"{doing}: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")


def s3_join(bucket: str, *parts: str) -> str:
    return "s3://" + "/".join([bucket] + [p.strip("/") for p in parts if p and p.strip("/")])


def naive_time(moment: datetime | None) -> datetime | None:
    """boto3's times are time-zone aware; Syne Tune's are naive local times."""
    return moment.astimezone().replace(tzinfo=None) if isinstance(moment, datetime) and moment.tzinfo else moment


def _seconds_from_environment(name: str, default: str, minimum: float) -> float:
    value = os.environ.get(name, default)
    try:
        return max(minimum, float(value))
    except ValueError:
        raise SynePruneError(f"{name} must be seconds, got '{value}'") from None


def wait_between_polls() -> float:
    """Seconds between the Tuner's status queries: jobs take minutes, describe calls are rate-limited."""
    return _seconds_from_environment("SYNE_PRUNE_SAGEMAKER_POLL_S", "10", 0.05)


def log_grace_s() -> float:
    """How long after a job ended its log lines may still be arriving in CloudWatch."""
    return _seconds_from_environment("SYNE_PRUNE_SAGEMAKER_LOG_GRACE_S", "120", 0.0)
