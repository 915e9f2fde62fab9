"""AWS calls of SageMaker jobs: one path for every call (``call_aws``: the request checked against AWS's model, a
failure as one line that keeps its whole cause), the errors worth waiting out, S3 locations, polling intervals."""
from __future__ import annotations

import os
import re
from datetime import datetime

from syne_prune.aws.service_model import request_problems
from syne_prune.errors import SynePruneError

S3_URI = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/.*)?$")
# AWS's error codes for "too many requests": botocore retries them (adaptive mode) before the caller sees one
THROTTLING = frozenset({"Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException", "TooManyRequestsException",
                        "RequestLimitExceeded", "RequestThrottled", "SlowDown", "ProvisionedThroughputExceededException", "PriorRequestNotComplete"})
# refusals that pass: AWS asks to wait (throttling), or the account's instances are in use (a quota: jobs end, instances free up)
WAIT_AND_RETRY = THROTTLING | {"ResourceLimitExceeded"}
INVALID_REQUEST = "InvalidRequest"  # AwsError.code of a request refused here, against AWS's model, before it is sent


class AwsError(SynePruneError):
    """A failed AWS call as one line (``str``), with AWS's error code (``code``: e.g. ``AccessDeniedException``,
    ``ResourceLimitExceeded``; ``INVALID_REQUEST`` for a request refused against AWS's model; None when AWS never
    answered, e.g. no credentials or no connection)."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


def one_line(text: str) -> str:
    """Every non-empty line of ``text``, joined with '; '."""
    return "; ".join(line.strip() for line in str(text).splitlines() if line.strip())


def aws_error(error: Exception, doing: str) -> AwsError:
    """A boto3/botocore failure as one line with its whole cause (every line of a parameter-validation report
    included; never credentials): ``DOING: CODE: MESSAGE``."""
    from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError  # optional (syne-prune[sagemaker])

    if isinstance(error, AwsError):
        return error
    if isinstance(error, NoCredentialsError):
        return AwsError(f"{doing}: no AWS credentials found; configure them (aws configure, AWS_PROFILE or an instance role)")
    if isinstance(error, NoRegionError):
        return AwsError(f"{doing}: no region; pass --region")
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        code = info.get("Code") or str(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "error"))
        return AwsError(f"{doing}: {code}: {one_line(info.get('Message', ''))}".rstrip(": "), code)
    return AwsError(f"{doing}: {type(error).__name__}: {one_line(error)}".rstrip(": "))


def call_aws(client, method: str, doing: str, **params):
    """``client.METHOD(**params)``, the one path of the backend's and launchers' AWS calls: the request is checked
    against the service's model first (``request_problems``: what AWS would refuse is refused here, code
    ``INVALID_REQUEST``, nothing sent); any failure becomes an ``AwsError`` saying ``doing`` and AWS's answer in one
    line. Returns the response."""
    problems = request_problems(client, method, params)
    if problems:
        raise AwsError(f"{doing}: AWS would refuse the request: {'; '.join(problems)}", INVALID_REQUEST)
    try:
        return getattr(client, method)(**params)
    except Exception as error:  # noqa: BLE001 - every failure of the call, as one line
        raise aws_error(error, doing) from None


def s3_join(bucket: str, *parts: str) -> str:
    """``s3://BUCKET/PART/...`` (empty parts and surplus slashes dropped)."""
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


def capacity_wait_s() -> float:
    """How long a job AWS refuses for now (throttling, the account's instance quota in use) is tried again while no
    other job of the search runs, before the search ends with AWS's answer."""
    return _seconds_from_environment("SYNE_PRUNE_SAGEMAKER_CAPACITY_WAIT_S", "3600", 0.0)


def log_grace_s() -> float:
    """How long after a job ended its log lines may still be arriving in CloudWatch."""
    return _seconds_from_environment("SYNE_PRUNE_SAGEMAKER_LOG_GRACE_S", "120", 0.0)
