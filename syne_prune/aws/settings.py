"""Where and how the SageMaker jobs run (``SageMakerSettings``), with their command-line options
(``add_sagemaker_arguments``, read back by ``sagemaker_settings``) and the offline checks."""
from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field

from syne_prune.aws.calls import S3_URI
from syne_prune.aws.environment import DEFAULT_FRAMEWORK_VERSION, FRAMEWORK_PY_VERSION
from syne_prune.aws.service_model import pattern_matches, shape_limits
from syne_prune.errors import SynePruneError

ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
VPC_ID = re.compile(r"^[-0-9a-zA-Z]{1,32}$")  # a subnet or security group id (SageMaker's model: SubnetId, SecurityGroupId)


@dataclass(frozen=True)
class SageMakerSettings:
    """Where and how trial jobs run. ``max_wait_s`` (spot) must be at least ``max_run_s``."""

    role: str
    region: str
    s3_prefix: str
    instance_type: str = "ml.m5.xlarge"
    instance_count: int = 1
    image_uri: str | None = None
    framework_version: str = DEFAULT_FRAMEWORK_VERSION
    spot: bool = False
    max_run_s: int = 24 * 3600
    max_wait_s: int | None = None
    volume_size_gb: int = 30
    keep_alive_s: int = 0
    fast_file: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    subnets: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()

    def check(self) -> None:
        """Everything that can be checked offline, as one-line errors."""
        import boto3  # optional (syne-prune[sagemaker])

        if not self.role:
            raise SynePruneError("--role is required: the ARN of an IAM role SageMaker may assume (arn:aws:iam::ACCOUNT:role/NAME)")
        if not ROLE_ARN.match(self.role):
            raise SynePruneError(f"--role '{self.role}' is not an IAM role ARN; expected arn:aws:iam::<12-digit account>:role/<name>")
        if not self.region:
            raise SynePruneError("--region is required (e.g. us-east-1)")
        regions = boto3.session.Session().get_available_regions("sagemaker")
        regions += boto3.session.Session().get_available_regions("sagemaker", partition_name="aws-cn")
        if self.region not in regions:
            raise SynePruneError(f"--region '{self.region}' has no SageMaker; choose one of {', '.join(sorted(regions)[:6])}, ...")
        if not S3_URI.match(self.s3_prefix or ""):
            raise SynePruneError(f"--s3-prefix '{self.s3_prefix}' is not an S3 location; expected s3://bucket/prefix")
        known = training_instance_types()
        if self.instance_type not in known:
            close = [t for t in known if t.split(".")[1] == (self.instance_type.split(".") + ["", ""])[1]][:4]
            hint = f" (e.g. {', '.join(close)})" if close else " (e.g. ml.m5.xlarge, ml.g5.xlarge)"
            raise SynePruneError(f"--instance-type '{self.instance_type}' is not a SageMaker training instance type{hint}")
        if self.instance_count < 1:
            raise SynePruneError(f"--instance-count must be at least 1, got {self.instance_count}")
        if self.max_run_s < 1 or self.volume_size_gb < 1:
            raise SynePruneError("--max-run and --volume-size must be positive")
        self._check_against_the_model()
        if self.spot and self.max_wait_s is not None and self.max_wait_s < self.max_run_s:
            raise SynePruneError(f"--max-wait ({self.max_wait_s} s) must be at least --max-run ({self.max_run_s} s) for spot jobs")
        if not self.spot and self.max_wait_s is not None:
            raise SynePruneError("--max-wait applies to spot jobs only; add --spot or drop --max-wait")
        if self.spot and self.keep_alive_s:
            raise SynePruneError("SageMaker warm pools (--keep-alive) cannot be used with spot instances; drop one of --spot, --keep-alive")
        if bool(self.subnets) != bool(self.security_group_ids):
            raise SynePruneError("a VPC needs both --subnets and --security-group-ids")

    def _check_against_the_model(self) -> None:
        """What SageMaker's service model (botocore's, offline) allows for keep-alive, VPC ids and tags."""
        client = sagemaker_model_client()
        low, high = shape_limits(client, "KeepAlivePeriodInSeconds")
        if not low <= self.keep_alive_s <= high:
            raise SynePruneError(f"--keep-alive must be {low} to {high} seconds (SageMaker's limit for warm pools), got {self.keep_alive_s}")
        _, most_subnets = shape_limits(client, "Subnets")
        _, most_groups = shape_limits(client, "SecurityGroupIds")
        if len(self.subnets) > most_subnets or len(self.security_group_ids) > most_groups:
            raise SynePruneError(f"a job takes at most {most_subnets} --subnets and {most_groups} --security-group-ids")
        for item in self.subnets + self.security_group_ids:
            if not VPC_ID.match(item):
                raise SynePruneError(f"'{item}' is not a subnet or security group id (e.g. subnet-0abc123, sg-0abc123)")
        check_tags(self.tags, client)

    @property
    def bucket_and_key(self) -> tuple[str, str]:
        match = S3_URI.match(self.s3_prefix)
        return match.group(1), (match.group(2) or "").strip("/")

    def image(self) -> str:
        """``image_uri``, or AWS's PyTorch training image of ``framework_version`` for the region and instance type
        (looked up offline by the SageMaker SDK). Raises SynePruneError without the SDK; the SDK's own errors pass."""
        if self.image_uri:
            return self.image_uri
        try:
            from sagemaker.core import image_uris  # optional (syne-prune[sagemaker])
        except ImportError:
            raise SynePruneError("give --image-uri, or pip install 'syne-prune[sagemaker]' to look up the PyTorch training image") from None
        return image_uris.retrieve("pytorch", region=self.region, version=self.framework_version, py_version=FRAMEWORK_PY_VERSION,
                                   instance_type=self.instance_type, image_scope="training")


def sagemaker_model_client():
    """A SageMaker client for reading botocore's service model offline (it never sends a request)."""
    import boto3  # optional (syne-prune[sagemaker])

    return boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def training_instance_types() -> list[str]:
    """Every training instance type SageMaker's API knows (from botocore's service model, offline)."""
    return list(sagemaker_model_client().meta.service_model.shape_for("TrainingInstanceType").enum)


def check_tags(tags: dict[str, str], client=None) -> None:
    """Refuse tags AWS refuses (one-line SynePruneError): more than the model's 50 per job, a key of 1-128 or a value of
    0-256 characters outside AWS's tag characters (letters, digits, spaces and _ . : / = + - @), a key that
    starts with ``aws:`` (reserved for AWS's own tags)."""
    client = client or sagemaker_model_client()
    _, most = shape_limits(client, "TagList")
    if len(tags) > most:
        raise SynePruneError(f"--tags: a job takes at most {most} tags, got {len(tags)}")
    for what, shape, values in (("key", "TagKey", list(tags)), ("value", "TagValue", list(tags.values()))):
        low, high = shape_limits(client, shape)
        pattern = client.meta.service_model.shape_for(shape).metadata.get("pattern", "")
        for text in values:
            if not low <= len(text) <= high or pattern_matches(pattern, text) is False:
                raise SynePruneError(f"--tags: {what} '{text}' is not a valid AWS tag {what}: {low} to {high} letters, digits, "
                                     "spaces or _ . : / = + - @")
    reserved = [key for key in tags if key.lower().startswith("aws:")]
    if reserved:
        raise SynePruneError(f"--tags: key '{reserved[0]}' starts with 'aws:', which AWS keeps for its own tags")


# ---- on the command line (syne-prune search --backend sagemaker, launchers/) ----

SAGEMAKER_OPTIONS = ("role", "region", "s3_prefix", "image_uri", "spot", "max_wait", "keep_alive", "fast_file", "tags",
                     "subnets", "security_group_ids")


def sagemaker_settings(args: argparse.Namespace) -> SageMakerSettings | None:
    """SageMakerSettings from the command line (``add_sagemaker_arguments``), or None when no SageMaker
    option is given and ``args.backend`` is not ``sagemaker``. Raises SynePruneError for malformed --tags."""
    if args.backend != "sagemaker" and not any(getattr(args, n) for n in SAGEMAKER_OPTIONS):
        return None
    tags = {}
    for item in filter(None, (args.tags or "").split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SynePruneError(f"--tags '{args.tags}' must be KEY=VALUE pairs separated by commas")
        tags[key.strip()] = value.strip()
    split = lambda text: tuple(filter(None, (text or "").split(",")))  # noqa: E731
    return SageMakerSettings(
        role=args.role or "", region=args.region or "", s3_prefix=args.s3_prefix or "", instance_type=args.instance_type,
        instance_count=args.instance_count, image_uri=args.image_uri, spot=args.spot, max_run_s=args.max_run,
        max_wait_s=args.max_wait, volume_size_gb=args.volume_size, keep_alive_s=args.keep_alive, fast_file=args.fast_file,
        tags=tags, subnets=split(args.subnets), security_group_ids=split(args.security_group_ids),
    )


def add_sagemaker_arguments(parser: argparse.ArgumentParser) -> None:
    """The SageMaker options (an argument group of ``parser``), read back by ``sagemaker_settings``."""
    group = parser.add_argument_group("SageMaker (--backend sagemaker): one training job per trial")
    group.add_argument("--role", help="IAM role ARN the jobs run as (arn:aws:iam::ACCOUNT:role/NAME)")
    group.add_argument("--region", help="AWS region, e.g. us-east-1")
    group.add_argument("--s3-prefix", help="s3://bucket/prefix for source, super-network, checkpoints and outputs")
    group.add_argument("--instance-type", default="ml.m5.xlarge", help="training instance type")
    group.add_argument("--instance-count", type=int, default=1, help="instances per job (a trial runs on one)")
    group.add_argument("--image-uri", help="training image, run as it is: it must hold syne-prune's dependencies (default: AWS's "
                       "PyTorch training image of the region, into which each job pip-installs this machine's versions of them)")
    group.add_argument("--spot", action="store_true", help="managed spot instances (cheaper, may be interrupted)")
    group.add_argument("--max-run", type=int, default=24 * 3600, help="seconds a job may run")
    group.add_argument("--max-wait", type=int, help="spot: seconds to wait for capacity plus run (>= --max-run)")
    group.add_argument("--volume-size", type=int, default=30, help="GB of disk per instance")
    group.add_argument("--keep-alive", type=int, default=0, help="warm pool: seconds an instance waits for the next job "
                       "(0 to 21600, SageMaker's limit; needs a warm-pool quota, which is 0 unless raised)")
    group.add_argument("--fast-file", action="store_true", help="stream the super-network channel (FastFile mode)")
    group.add_argument("--tags", help="KEY=VALUE,... tags on every job")
    group.add_argument("--subnets", help="VPC subnet ids, comma-separated (with --security-group-ids)")
    group.add_argument("--security-group-ids", help="VPC security group ids, comma-separated")
